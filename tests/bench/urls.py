"""Product URLs plus Django's admin (benchmark only) with the user model registered."""

from django.contrib import admin
from django.urls import path

from accounts.models import User
from billing_access.urls import *  # noqa: F403
from billing_access.urls import urlpatterns as product_urlpatterns
from portal.access import public, signed_in
from tests.bench.floor_urls import floor


class UserAdmin(admin.ModelAdmin):
    list_display = ("username", "email", "first_name", "last_name", "allow_login", "role")
    list_select_related = ("role",)
    search_fields = ("username", "email", "first_name", "last_name")
    list_filter = ("allow_login", "kind")


admin.site.register(User, UserAdmin)


def _wrap(callback):
    def view(request, *args, **kwargs):
        return callback(request, *args, **kwargs)

    return view


def _public_admin_urls():
    # The admin has its own staff check; mark its views public for the portal's default-deny
    # middleware so that the comparison measures the admin as a team would run it.
    urls = admin.site.urls
    patterns = urls[0]

    def mark(items):
        for item in items:
            if hasattr(item, "url_patterns"):
                mark(item.url_patterns)
            elif hasattr(item, "callback"):
                item.callback = public(_wrap(item.callback))

    mark(patterns)
    return urls


# The floor's bare view behind the portal's whole middleware, first in the URLconf (as the home
# page is): how much of a page's cost the middleware is, before any template.
urlpatterns = [
    path("bench-empty/", signed_in(_wrap(floor))),
    *product_urlpatterns,
    path("bench-admin/", _public_admin_urls()),
]
