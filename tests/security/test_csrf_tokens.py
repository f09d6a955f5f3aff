"""The forms' CSRF token (security.csrf): Django's format, a uniform mask, its cookie."""

import collections
import html
import re

import pytest
from django.conf import settings
from django.middleware.csrf import (
    CSRF_ALLOWED_CHARS,
    CSRF_SECRET_LENGTH,
    CSRF_TOKEN_LENGTH,
    _get_new_csrf_string,
    _unmask_cipher_token,
)
from django.test import Client, override_settings
from django.urls import reverse

from security.csrf import mask_secret
from tests.builders import PASSWORD, make_user

TOKEN = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def test_a_token_unmasks_to_its_secret_with_djangos_own_code():
    for _ in range(300):
        secret = _get_new_csrf_string()
        token = mask_secret(secret)
        assert len(token) == CSRF_TOKEN_LENGTH
        assert set(token) <= set(CSRF_ALLOWED_CHARS)
        assert _unmask_cipher_token(token) == secret


def test_each_token_has_a_fresh_mask():
    secret = _get_new_csrf_string()
    tokens = {mask_secret(secret) for _ in range(200)}
    assert len(tokens) == 200
    assert len({token[:CSRF_SECRET_LENGTH] for token in tokens}) == 200


def test_every_mask_character_is_equally_likely():
    # 4,000 masks: 128,000 characters, 2,065 expected of each (standard deviation about 45). A
    # mask taken modulo 62 without dropping bytes would give the first eight characters 2,500.
    secret = "a" * CSRF_SECRET_LENGTH
    masks = (mask_secret(secret)[:CSRF_SECRET_LENGTH] for _ in range(4000))
    counts = collections.Counter(char for mask in masks for char in mask)
    assert set(counts) == set(CSRF_ALLOWED_CHARS)
    expected = 4000 * CSRF_SECRET_LENGTH / len(CSRF_ALLOWED_CHARS)
    assert all(abs(count - expected) < 250 for count in counts.values()), counts


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

    def test_the_cookie_lasts_the_browser_session_and_is_not_sent_again(self, owner):
        client = Client()
        first = client.get(reverse("accounts:sign_in"))
        cookie = first.cookies[settings.CSRF_COOKIE_NAME]
        assert cookie.value and not cookie["max-age"] and not cookie["expires"]
        again = client.get(reverse("accounts:sign_in"))
        assert TOKEN.search(again.content.decode())
        assert settings.CSRF_COOKIE_NAME not in again.cookies

    @override_settings(CSRF_COOKIE_AGE=3600)
    def test_a_cookie_with_an_expiry_is_renewed_as_django_does(self, owner):
        client = Client()
        client.get(reverse("accounts:sign_in"))
        again = client.get(reverse("accounts:sign_in"))
        assert again.cookies[settings.CSRF_COOKIE_NAME]["max-age"] == 3600

    def test_a_request_with_a_malformed_cookie_gets_a_new_secret(self, owner):
        client = Client()
        client.cookies[settings.CSRF_COOKIE_NAME] = "not-a-secret!"
        response = client.get(reverse("accounts:sign_in"))
        secret = response.cookies[settings.CSRF_COOKIE_NAME].value
        assert len(secret) == CSRF_SECRET_LENGTH
        token = html.unescape(TOKEN.search(response.content.decode())[1])
        assert _unmask_cipher_token(token) == secret
