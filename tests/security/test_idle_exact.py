"""The idle timeout counts from the last request exactly, at the policy's one-minute minimum."""

import datetime

import pytest
from django.core import signing
from django.test import Client
from django.utils import timezone

from security.middleware import ACTIVITY_COOKIE, ACTIVITY_SALT
from tests.builders import make_user

from .conftest import clock, set_policy

pytestmark = pytest.mark.django_db

START = timezone.now().replace(microsecond=0)


def at(seconds: float) -> datetime.datetime:
    return START + datetime.timedelta(seconds=seconds)


@pytest.fixture
def client_of(owner):
    set_policy(owner, idle_timeout_minutes=1, absolute_timeout_hours=8)
    user = make_user(owner, username="ida")
    client = Client()
    with clock(at(0)):
        client.force_login(user, backend="accounts.backends.PortalBackend")
        assert client.get("/").status_code == 200
    return client


def test_a_page_every_20_seconds_is_never_idle(client_of):
    for second in range(20, 200, 20):
        with clock(at(second)):
            assert client_of.get("/").status_code == 200, second


def test_the_session_ends_one_minute_after_the_last_request_not_before(client_of):
    with clock(at(50)):
        assert client_of.get("/").status_code == 200
    with clock(at(50 + 59)):
        assert client_of.get("/me/access/").status_code == 200
    with clock(at(50 + 59 + 60)):
        response = client_of.get("/me/access/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=%2Fme%2Faccess%2F"
    assert ACTIVITY_COOKIE not in response.cookies or not response.cookies[ACTIVITY_COOKIE].value


def test_an_idle_session_asking_for_the_sign_in_page_keeps_no_next(client_of):
    with clock(at(61)):
        response = client_of.get("/sign-in/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/"


def test_a_forged_or_borrowed_activity_cookie_counts_for_nothing(client_of, owner):
    forged = signing.dumps({"k": "0" * 16, "t": at(55).timestamp()}, salt=ACTIVITY_SALT)
    client_of.cookies[ACTIVITY_COOKIE] = forged
    with clock(at(61)):
        assert client_of.get("/").status_code == 302  # idle since second 0
    other = Client()
    other.force_login(make_user(owner, username="oli"), backend="accounts.backends.PortalBackend")
    with clock(at(0)):
        other.get("/")
    unsigned = '{"k": "x", "t": 1e12}'
    other.cookies[ACTIVITY_COOKIE] = unsigned
    with clock(at(61)):
        assert other.get("/").status_code == 302
