"""The forms' CSRF token: Django's own, accepted when genuine, refused when forged; its cookie."""

import html
import re

import pytest
from django.conf import settings
from django.middleware.csrf import (
    CSRF_SECRET_LENGTH,
    _unmask_cipher_token,
)
from django.test import Client
from django.urls import reverse

from tests.builders import PASSWORD, make_user

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.mark.django_db
class TestPageTokens:
    def sign_in(self, user) -> Client:
        client = Client(enforce_csrf_checks=True)
        page = client.get(reverse("accounts:sign_in")).content.decode()
        response = client.post(
            reverse("accounts:sign_in"),
            {
                "csrfmiddlewaretoken": html.unescape(TOKEN.search(page)[1]),
                "login": user.username,
                "password": PASSWORD,
            },
        )
        assert response.status_code == 302
        return client

    def test_the_sign_out_form_token_is_accepted_and_a_forged_one_refused(self, owner):
        client = self.sign_in(make_user(owner))
        page = client.get(reverse("home")).content.decode()
        token = html.unescape(TOKEN.search(page)[1])
        forged = token[:-1] + ("a" if token[-1] != "a" else "b")
        assert (
            client.post(reverse("accounts:sign_out"), {"csrfmiddlewaretoken": forged}).status_code
            == 403
        )
        response = client.post(reverse("accounts:sign_out"), {"csrfmiddlewaretoken": token})
        assert response.status_code == 302
        assert client.get(reverse("home")).status_code == 302  # signed out

    def test_the_cookie_lasts_the_browser_session(self, owner):
        client = Client()
        first = client.get(reverse("accounts:sign_in"))
        cookie = first.cookies[settings.CSRF_COOKIE_NAME]
        assert cookie.value and not cookie["max-age"] and not cookie["expires"]

    def test_a_request_with_a_malformed_cookie_gets_a_new_secret(self, owner):
        client = Client()
        client.cookies[settings.CSRF_COOKIE_NAME] = "not-a-secret!"
        response = client.get(reverse("accounts:sign_in"))
        secret = response.cookies[settings.CSRF_COOKIE_NAME].value
        assert len(secret) == CSRF_SECRET_LENGTH
        token = html.unescape(TOKEN.search(response.content.decode())[1])
        assert _unmask_cipher_token(token) == secret
