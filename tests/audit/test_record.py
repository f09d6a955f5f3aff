"""audit.record: the single writer; cleansed, chained, in the caller's transaction."""

import pytest
from django.db import transaction

import audit
from audit.models import AuditChainHead, AuditEvent
from audit.services import GENESIS_HASH, cleanse, content_hash
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
def test_unknown_action_is_refused(owner):
    with pytest.raises(ValueError):
        audit.record("made_up_action")
