"""Tunables of the outbox, read from the settings when used (never at import time)."""

from __future__ import annotations

from django.conf import settings

# Seconds between attempts of an email: the n-th failed attempt waits the n-th entry (the last
# one repeats); after EMAIL_MAX_ATTEMPTS attempts the email is given up.
EMAIL_BACKOFF = (30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 28800)
EMAIL_MAX_ATTEMPTS = 10


def lease_seconds() -> int:
    """How long a task may stay running before another worker takes it over (a dead worker's)."""
    return max(5, int(getattr(settings, "DELIVERY_LEASE_SECONDS", 120)))


def overdue_seconds() -> int:
    """How late an outbox row may be before the housekeeping enqueues a task for it again."""
    return max(lease_seconds(), int(getattr(settings, "DELIVERY_OVERDUE_SECONDS", 600)))


def backoff(attempts: int, schedule: tuple[int, ...]) -> int:
    """Return the seconds to wait after the `attempts`-th failed attempt."""
    return schedule[min(max(attempts, 1), len(schedule)) - 1]
