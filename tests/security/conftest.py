"""Helpers of the security tests: owner policies, a movable clock, real sign-in POSTs."""

from __future__ import annotations

import contextlib
import datetime
from unittest import mock

import pytest
from django.utils import timezone

from security.models import PasswordPolicy
from tests.builders import PASSWORD

SIGN_IN = "/sign-in/"


def set_policy(owner, **fields) -> PasswordPolicy:
    """Save the owner's policy with `fields` changed from the defaults (tests only)."""
    policy, _ = PasswordPolicy.objects.update_or_create(owner=owner, defaults=fields)
    owner._state.fields_cache["password_policy"] = policy  # objects in the test see the change
    return policy


@contextlib.contextmanager
def clock(moment: datetime.datetime):
    """Make timezone.now() answer `moment` inside the block."""
    with mock.patch("django.utils.timezone.now", return_value=moment):
        yield moment


def later(**delta) -> datetime.datetime:
    return timezone.now() + datetime.timedelta(**delta)


def post_sign_in(client, login, password=PASSWORD, data=None, **request_extra):
    """POST the sign-in form; `request_extra` goes to the request (REMOTE_ADDR=, secure=)."""
    return client.post(
        SIGN_IN, {"login": login, "password": password, **(data or {})}, **request_extra
    )


@pytest.fixture
def make_policy():
    return set_policy


def give_proof(client, moment=None):
    """Record a recent password proof in the client's session (as the sign-in page does)."""
    session = client.session
    session["proof_at"] = (moment or timezone.now()).isoformat()
    session.save()
    return client
