"""The audit guard itself: a request that changes access data without an event is caught."""

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from tests import audit_guard
from tests.builders import make_role_group


@pytest.mark.django_db
def test_a_silent_change_is_a_violation(owner):
    audit_guard.connect()

    def silent_view(request):
        make_role_group(owner, grants={"invoices": "full"})
        return HttpResponse("ok")

    audit_guard.AuditGuardMiddleware(silent_view)(RequestFactory().post("/silent/"))
    found = list(audit_guard.violations)
    audit_guard.violations.clear()
    assert found and "roles.RoleGroup" in found[0]


@pytest.mark.django_db
def test_a_change_with_its_event_passes(owner):
    import audit

    audit_guard.connect()

    def honest_view(request):
        group = make_role_group(owner, grants={"invoices": "full"})
        audit.record("role_group_created", target=group, owner=owner)
        return HttpResponse("ok")

    audit_guard.AuditGuardMiddleware(honest_view)(RequestFactory().post("/honest/"))
    assert audit_guard.violations == []
