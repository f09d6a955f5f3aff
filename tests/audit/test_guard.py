"""The audit guard itself: a request that changes access data without an event is caught,
also when it writes with QuerySet.update(), bulk_update() or bulk_create()."""

import pytest
from django.db.models import F
from django.http import HttpResponse
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import Owner, User
from roles.models import Grant
from tests import audit_guard
from tests.builders import make_role_group, make_user


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


def _serve(view, path="/silent/"):
    """Serve one POST through the guard; return (and clear) the violations it found."""
    audit_guard.connect()
    audit_guard.violations.clear()
    audit_guard.AuditGuardMiddleware(view)(RequestFactory().post(path))
    found = list(audit_guard.violations)
    audit_guard.violations.clear()
    return found


@pytest.mark.django_db
def test_a_silent_queryset_update_is_a_violation(owner):
    """As the user screens write: a conditional UPDATE sends no post_save, and is still seen."""
    user = make_user(owner, username="fran")

    def silent_view(request):
        User.objects.filter(pk=user.pk, row_version=user.row_version).update(
            allow_login=False, row_version=F("row_version") + 1
        )
        return HttpResponse("ok")

    found = _serve(silent_view)
    assert len(found) == 1
    assert "accounts.User (QuerySet.update of allow_login, row_version)" in found[0]


@pytest.mark.django_db
def test_silent_bulk_writes_are_violations(owner):
    user = make_user(owner, username="fran")
    group = make_role_group(owner)

    def bulk_update_view(request):
        user.privilege_level = 9
        User.objects.bulk_update([user], ["privilege_level"])
        return HttpResponse("ok")

    def bulk_create_view(request):
        Grant.objects.bulk_create([Grant(role_group=group, area="invoices", level="full")])
        return HttpResponse("ok")

    assert "accounts.User (QuerySet.update of privilege_level)" in _serve(bulk_update_view)[0]
    assert "roles.Grant (bulk_create)" in _serve(bulk_create_view)[0]


@pytest.mark.django_db
def test_updates_that_change_no_access_data_pass(owner):
    user = make_user(owner, username="fran")

    def bookkeeping_view(request):
        User.objects.filter(pk=user.pk).update(last_sign_in_at=timezone.now())  # bookkeeping
        User.objects.filter(pk=-1).update(allow_login=False)  # no row matched: nothing changed
        Owner.objects.filter(pk=owner.pk).update(name="Renamed")  # not access data
        return HttpResponse("ok")

    assert _serve(bookkeeping_view) == []


@pytest.mark.django_db
def test_a_queryset_update_with_its_event_passes(owner):
    import audit

    user = make_user(owner, username="fran")

    def honest_view(request):
        User.objects.filter(pk=user.pk).update(allow_login=False)
        audit.record("user_deactivated", target=user, owner=owner)
        return HttpResponse("ok")

    assert _serve(honest_view) == []
