"""`manage.py purge_sessions`: expired sessions and old session records go, live ones stay."""

import datetime
import io

import pytest
from django.contrib.sessions.models import Session
from django.core.management import CommandError, call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from security.models import UserSession
from tests.builders import PASSWORD, make_user

pytestmark = pytest.mark.django_db


def record(user, *, seen_days_ago: float, ended: bool = False, key: str) -> UserSession:
    seen = timezone.now() - datetime.timedelta(days=seen_days_ago)
    return UserSession.objects.create(
        user=user,
        key_hash=key,
        created_at=seen,
        last_seen_at=seen,
        ended_at=seen if ended else None,
        end_reason="signed out" if ended else "",
    )


def purge(*args) -> str:
    out = io.StringIO()
    call_command("purge_sessions", *args, stdout=out)
    return out.getvalue()


def test_old_records_and_expired_sessions_go_recent_ones_stay(owner):
    user = make_user(owner)
    old_ended = record(user, seen_days_ago=120, ended=True, key="a" * 64)
    old_unended = record(user, seen_days_ago=100, key="b" * 64)  # never signed out; long over
    recent_ended = record(user, seen_days_ago=10, ended=True, key="c" * 64)
    now = timezone.now()
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=now)
    Session.objects.create(
        session_key="y" * 32, session_data="", expire_date=now + datetime.timedelta(hours=1)
    )

    output = purge()

    assert "Deleted 1 expired sessions and 2 session records" in output
    remaining = set(UserSession.objects.values_list("pk", flat=True))
    assert recent_ended.pk in remaining
    assert not {old_ended.pk, old_unended.pk} & remaining
    assert list(Session.objects.values_list("session_key", flat=True)) == ["y" * 32]


def test_days_sets_how_long_records_are_kept(owner):
    user = make_user(owner)
    record(user, seen_days_ago=10, ended=True, key="c" * 64)
    record(user, seen_days_ago=2, ended=True, key="d" * 64)
    assert "and 1 session records" in purge("--days", "7")
    assert UserSession.objects.count() == 1


def test_a_live_session_keeps_working_and_keeps_its_record(owner):
    user = make_user(owner)
    client = Client()
    client.post(reverse("accounts:sign_in"), {"login": user.username, "password": PASSWORD})
    assert client.get(reverse("home")).status_code == 200

    purge("--days", "1")

    assert client.get(reverse("home")).status_code == 200
    assert UserSession.objects.filter(user=user, ended_at__isnull=True).count() == 1


def test_records_younger_than_the_session_lifetime_are_never_deleted(owner, settings):
    # A session lasts up to SESSION_COOKIE_AGE after its last request, whatever --days says.
    settings.SESSION_COOKIE_AGE = 3 * 24 * 3600
    user = make_user(owner)
    record(user, seen_days_ago=2, key="e" * 64)
    purge("--days", "1")
    assert UserSession.objects.count() == 1


def test_days_below_one_is_refused(owner):
    with pytest.raises(CommandError, match="at least 1"):
        purge("--days", "0")
