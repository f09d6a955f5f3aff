"""The notes of current guidance read once under their label, not "Current guidance: Current
guidance advises…"."""

import pytest

from security import guidance
from security.models import PasswordPolicy
from tests.builders import make_user

pytestmark = pytest.mark.django_db


def test_every_note_starts_with_the_advice_itself():
    for note in {*guidance.BY_FIELD.values(), guidance.SHORT_MINIMUM}:
        assert not note.lower().startswith("current guidance"), note[:40]


def test_the_policy_screen_says_current_guidance_once_per_note(signed_in, owner):
    PasswordPolicy.objects.update_or_create(
        owner=owner, defaults={"require_upper": True, "expiry_days": 90}
    )
    reader = make_user(owner, grants={"parameters": "read"})
    page = signed_in(reader).get("/settings/password-policy/").content.decode()
    assert "<strong>Current guidance:</strong> Composition rules are advised against." in page
    assert "<strong>Current guidance:</strong> Scheduled expiry is advised against." in page
    assert "Current guidance: Current guidance" not in page
    assert "</strong> Current guidance" not in page
