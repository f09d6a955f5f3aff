"""Root URLs: every app under its namespace; every view declares its access requirement."""

from django.urls import include, path

from accounts import views as account_views

from . import authzen, views

handler400 = "billing_access.views.bad_request"
handler403 = "billing_access.views.permission_denied"
handler404 = "billing_access.views.page_not_found"
handler500 = "billing_access.views.server_error"

urlpatterns = [
    # The machine doors first: a service's decision is not matched against every screen's
    # pattern before its own.
    path("access/v1/", include("billing_access.authzen")),
    path("api/v1/", include("billing_access.api")),
    path("", account_views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("", include("accounts.urls")),
    path("", include("accounts.twofactor.urls")),
    path("", include("accounts.passkeys.urls")),
    path("", include("roles.urls")),
    path("", include("security.urls")),
    path("", include("audit.urls")),
    path("", include("reviews.urls")),
    path("saml2/", include("sso.urls")),
    path("", include("accounts.tokens.urls")),
    path(".well-known/authzen-configuration", authzen.configuration, name="authzen_configuration"),
    path("", include("scim.urls")),
    path("", include("webhooks.urls")),
    path("", include("siem.urls")),
]
