"""audit.record: the single writer; cleansed, chained, in the caller's transaction."""

from unittest import mock

import pytest
from django.db import transaction

import audit
from audit.hashing import GENESIS_HASH, content_hash
from audit.models import AuditChainHead, AuditEvent
from audit.services import cleanse
from tests.builders import make_user


def test_cleanse_strips_secrets_recursively():
    data = {
        "password": "hunter2",
        "nested": {"totp_key": "abc", "name": "x"},
        "codes": ["1", "2"],
        "token": "t",
        "level": "full",
    }
    assert cleanse(data) == {
        "password": "[redacted]",
        "nested": {"totp_key": "[redacted]", "name": "x"},
        "codes": "[redacted]",
        "token": "[redacted]",
        "level": "full",
    }


@pytest.mark.django_db
def test_events_form_a_hash_chain_per_owner(owner):
    user = make_user(owner)
    first = audit.record("user_changed", actor=user, target=user, changes={"email": ["a", "b"]})
    second = audit.record("user_changed", actor=user, target=user, reason="Correction")
    assert first.prev_hash == GENESIS_HASH
    assert second.prev_hash == first.hash
    assert (first.seq, second.seq) == (1, 2)
    stored = AuditEvent.objects.get(pk=second.pk)
    assert content_hash(stored) == stored.hash
    assert AuditChainHead.objects.get(chain=owner.pk).last_hash == second.hash


@pytest.mark.django_db
def test_the_event_rolls_back_with_the_change(owner):
    user = make_user(owner)
    with pytest.raises(RuntimeError), transaction.atomic():
        audit.record("user_changed", actor=user, target=user)
        raise RuntimeError("the change failed")
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_a_failure_after_the_event_leaves_neither_change_nor_event(owner):
    user = make_user(owner, email="before@example.test")
    with pytest.raises(RuntimeError), transaction.atomic():
        type(user).objects.filter(pk=user.pk).update(email="after@example.test")
        audit.record(
            "user_changed",
            actor=user,
            target=user,
            changes={"email": ["before@example.test", "after@example.test"]},
        )
        raise RuntimeError("a later step of the change failed")
    user.refresh_from_db()
    assert user.email == "before@example.test"
    assert AuditEvent.objects.count() == 0
    assert not AuditChainHead.objects.filter(chain=owner.pk, seq__gt=0).exists()


@pytest.mark.django_db
def test_a_failure_to_write_the_event_undoes_the_change(owner):
    user = make_user(owner, email="before@example.test")
    with (
        mock.patch("audit.services.content_hash", side_effect=RuntimeError("disk full")),
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        type(user).objects.filter(pk=user.pk).update(email="after@example.test")
        audit.record("user_changed", actor=user, target=user)
    user.refresh_from_db()
    assert user.email == "before@example.test"
    assert AuditEvent.objects.count() == 0


@pytest.mark.django_db
def test_seq_order_is_time_order(owner):
    user = make_user(owner)
    events = [audit.record("user_changed", actor=user, target=user) for _ in range(3)]
    times = [e.occurred_at for e in events]
    assert times == sorted(times)


@pytest.mark.django_db
def test_record_view_writes_a_sensitive_view_event(owner):
    from audit.services import record_view

    viewer, viewed = make_user(owner), make_user(owner)
    event = record_view(viewer, viewed, "Security tab")
    assert event.action == "sensitive_viewed"
    assert event.category == "view"
    assert (event.actor_id, event.subject_user_id, event.details) == (
        viewer.pk,
        viewed.pk,
        "Security tab",
    )


@pytest.mark.django_db
def test_unknown_action_is_refused(owner):
    with pytest.raises(ValueError):
        audit.record("made_up_action")
