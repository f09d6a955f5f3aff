"""Browser tests' shared step: a session for a user without going through the sign-in form."""

from django.conf import settings
from django.test import Client


def sign_in(page, live_server, user):
    """Give the browser a session of `user` (the sign-in form has its own browser test)."""
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])
