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
