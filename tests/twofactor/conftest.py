"""A movable clock for TOTP windows, throttling delays and code expiry (never sleep)."""

import datetime
from unittest import mock

import pytest


class Clock:
    def __init__(self, start: datetime.datetime):
        self.now = start

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += datetime.timedelta(**delta)

    @property
    def epoch(self) -> float:
        return self.now.timestamp()


@pytest.fixture
def clock():
    start = datetime.datetime(2026, 11, 22, 10, 0, 0, tzinfo=datetime.UTC)
    fake = Clock(start)
    with mock.patch("django.utils.timezone.now", new=fake):
        yield fake


def proved_client(user, client=None):
    """Return a client signed in as `user` with a fresh step-up proof (as right after sign-in)."""
    from django.test import Client
    from django.utils import timezone

    from portal.stepup import PROOF_AT

    client = client or Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    session = client.session
    session[PROOF_AT] = timezone.now().isoformat()
    session.save()
    return client


@pytest.fixture
def signed_in(client):
    """Sign a user in on the test client, with a recent step-up proof."""

    def sign_in(user):
        return proved_client(user, client)

    return sign_in
