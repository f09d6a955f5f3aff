"""The user record's activity and security tabs respect data protection and leave evidence."""

import pytest
from django.urls import reverse

import audit
from audit.models import AuditEvent
from tests.builders import make_user


@pytest.fixture
def fran(owner):
    fran = make_user(owner, username="fran")
    audit.record("sign_in", actor=fran, target=fran, method="password")
    audit.record("user_changed", actor=fran, target=fran, changes={"first_name": ["F", "Fran"]})
    return fran


@pytest.mark.django_db
def test_without_data_protection_only_record_changes_show(signed_in, owner, fran):
    viewer = make_user(owner, grants={"users": "read"})
    page = signed_in(viewer).get(reverse("accounts:user_activity", args=[fran.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert "User changed" in html
    assert "Signed in" not in html
    assert not AuditEvent.objects.filter(action="sensitive_viewed", actor_id=viewer.pk).exists()


@pytest.mark.django_db
def test_with_data_protection_personal_events_show_and_the_view_is_recorded(signed_in, owner, fran):
    viewer = make_user(
        owner, grants={"users": "read", "dp_user_activity": "read"}, privilege_level=8
    )
    html = signed_in(viewer).get(reverse("accounts:user_activity", args=[fran.pk])).content.decode()
    assert "Signed in" in html and "User changed" in html
    event = AuditEvent.objects.filter(action="sensitive_viewed", actor_id=viewer.pk).get()
    assert event.subject_user_id == fran.pk


@pytest.mark.django_db
def test_security_tab_view_is_recorded(signed_in, admin_user, fran):
    signed_in(admin_user).get(reverse("accounts:user_security", args=[fran.pk]))
    event = AuditEvent.objects.filter(action="sensitive_viewed").latest("id")
    assert (event.actor_id, event.subject_user_id, event.details) == (
        admin_user.pk,
        fran.pk,
        "Security tab",
    )
