"""Just-in-time access: eligibility, requests, approval by someone else, exact expiry."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.utils import timezone

from audit.models import AuditEvent
from delivery.worker import run_due
from roles import catalog, elevations, permissions
from roles.choices import RequestState
from roles.guards import EscalationRefused
from roles.models import AccessRequest
from roles.reports import who_has_access
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def payments(owner):
    return make_role_group(owner, "Payment releasers", {"payments": "full"})


@pytest.fixture
def clerk(owner, payments):
    """A clerk who holds invoices standing and is eligible for payments full."""
    role = make_role(owner, "Clerk", groups=[make_role_group(owner, "Inv", {"invoices": "full"})])
    role.eligible_role_groups.add(payments)
    return make_user(owner, username="clara", role=role, privilege_level=3)


@pytest.fixture
def approver(owner):
    return make_user(
        owner,
        username="anna",
        grants={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "full"},
        privilege_level=8,
    )


def level(user, area, now=None):
    return permissions.for_user(type(user).objects.get(pk=user.pk), now=now).level(area)


def ask(user, group, hours=2, **kwargs):
    kwargs.setdefault("justification", "Month-end payment run")
    return elevations.request_access(user, group, hours=hours, **kwargs)


def actions():
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_eligible_access_counts_only_while_an_approved_request_lasts(clerk, approver, payments):
    assert [g.name for g in elevations.eligible_groups(clerk)] == ["Payment releasers"]
    assert level(clerk, "payments") == "none"  # eligible is not standing

    request = ask(clerk, payments, ticket="FIN-42")
    assert request.state == RequestState.PENDING
    assert level(clerk, "payments") == "none"

    now = timezone.now()
    elevations.approve(request, actor=approver, reason="Run day", now=now)
    assert level(clerk, "payments", now=now) == "full"
    assert request.user in who_has_access(clerk.owner, "payments", "full")
    # Exact expiry: the next request past the end no longer has it, with no job in between.
    assert level(clerk, "payments", now=now + 2 * HOUR + datetime.timedelta(seconds=1)) == "none"
    assert actions()[-3:] == ["access_requested", "access_approved", "elevation_activated"]
    approved = AuditEvent.objects.get(action="access_approved")
    assert approved.reason.startswith(f"Request #{request.pk}: Month-end payment run")
    assert approved.context["ticket"] == "FIN-42"


def test_the_cache_entry_ends_with_the_elevation(clerk, approver, payments):
    now = timezone.now()
    elevations.approve(ask(clerk, payments, hours=1), actor=approver, now=now)
    entry = permissions.for_user(type(clerk).objects.get(pk=clerk.pk), now=now)
    assert entry.expires_at is not None and entry.expires_at <= now + HOUR + 5 * datetime.timedelta(
        seconds=1
    )
    assert not entry.is_fresh(now + 2 * HOUR)


def test_nobody_approves_their_own_request_or_above_their_own_levels(
    owner, clerk, approver, payments
):
    request = ask(clerk, payments)
    with pytest.raises(PermissionDenied, match="own request"):
        elevations.approve(request, actor=clerk)
    no_level = make_user(owner, grants={"payments": "full"}, privilege_level=8)
    with pytest.raises(PermissionDenied, match="Approve on Access Requests"):
        elevations.approve(request, actor=no_level)
    weaker = make_user(owner, grants={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "read"})
    with pytest.raises(EscalationRefused):
        elevations.approve(request, actor=weaker)
    stranger = make_user(make_owner(), grants={catalog.ACCESS_REQUESTS: catalog.APPROVE})
    with pytest.raises(Http404):
        elevations.approve(request, actor=stranger)
    request.refresh_from_db()
    assert request.state == RequestState.PENDING
    assert "access_approved" not in actions()


def test_bad_requests_are_refused_with_a_message_and_save_nothing(owner, clerk, payments):
    now = timezone.now()
    cases = [
        ({"hours": 9}, "hours"),  # the owner's maximum is 8
        ({"hours": 0}, "hours"),
        ({"starts_at": now - 2 * HOUR}, "starts_at"),
        ({"starts_at": now + datetime.timedelta(days=40)}, "starts_at"),
        ({"justification": "   "}, "justification"),
    ]
    for kwargs, field in cases:
        with pytest.raises(ValidationError) as refused:
            ask(clerk, payments, **kwargs)
        assert field in refused.value.message_dict, kwargs
    not_eligible = make_role_group(owner, "Tariffs", {"tariffs": "full"})
    with pytest.raises(ValidationError, match="not eligible"):
        ask(clerk, not_eligible)
    with pytest.raises(Http404):
        ask(clerk, make_role_group(make_owner(), "Theirs", {"payments": "full"}))
    assert not AccessRequest.objects.exists()
    assert not AuditEvent.objects.exists()


def test_asking_twice_or_for_what_one_holds_is_refused(owner, clerk, payments):
    first = ask(clerk, payments)
    with pytest.raises(ValidationError, match=f"request #{first.pk} is waiting"):
        ask(clerk, payments)
    holder = make_user(owner, grants={"payments": "full"})
    holder.role.eligible_role_groups.add(payments)
    with pytest.raises(ValidationError, match="already hold everything"):
        ask(holder, payments)


def test_two_approvers_at_once_one_wins_the_other_is_told(owner, clerk, approver, payments):
    second = make_user(
        owner,
        username="bert",
        grants={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "full"},
    )
    request = ask(clerk, payments)
    elevations.approve(request, actor=approver)
    with pytest.raises(ValidationError, match="already approved by"):
        elevations.deny(request, actor=second, reason="Not this month")
    request.refresh_from_db()
    assert (request.state, request.decided_by) == (RequestState.APPROVED, approver)


def test_approval_can_shorten_but_not_lengthen(clerk, approver, payments):
    request = ask(clerk, payments, hours=4)
    with pytest.raises(ValidationError, match="between 1 and 4"):
        elevations.approve(request, actor=approver, hours=6)
    approved = elevations.approve(request, actor=approver, hours=1)
    assert approved.ends_at - approved.starts_at == HOUR
    assert approved.requested_ends_at - approved.starts_at == 4 * HOUR


def test_a_lapsed_or_withdrawn_request_cannot_be_approved(clerk, approver, payments):
    request = ask(clerk, payments, hours=1)
    with pytest.raises(ValidationError, match="lapsed"):
        elevations.approve(request, actor=approver, now=timezone.now() + 2 * HOUR)
    elevations.withdraw(request, actor=clerk)
    with pytest.raises(ValidationError, match="already withdrawn"):
        elevations.approve(request, actor=approver)
    assert actions() == ["access_requested", "access_withdrawn"]


def test_self_activation_is_active_at_once(owner, clerk):
    reports = make_role_group(owner, "Report runner", {"reports": "run"})
    reports.self_activation = True
    reports.save()
    clerk.role.eligible_role_groups.add(reports)
    request = ask(clerk, reports)
    assert request.state == RequestState.APPROVED and request.decided_by == clerk
    assert level(clerk, "reports") == "run"
    assert actions() == ["elevation_activated"]


def test_ending_and_revoking(owner, clerk, approver, payments):
    request = elevations.approve(ask(clerk, payments), actor=approver)
    elevations.end(request, actor=clerk)
    assert level(clerk, "payments") == "none"
    with pytest.raises(ValidationError, match="not in force"):
        elevations.end(request, actor=clerk)

    again = elevations.approve(ask(clerk, payments), actor=approver)
    with pytest.raises(ValidationError, match="Say why"):
        elevations.end(again, actor=approver)
    elevations.end(again, actor=approver, reason="Run finished early")
    assert level(clerk, "payments") == "none"
    assert actions()[-1] == "elevation_revoked"
    assert AuditEvent.objects.filter(action="elevation_ended").count() == 1


def test_a_scheduled_elevation_starts_and_ends_on_time_and_is_recorded_once(
    clerk, approver, payments
):
    now = timezone.now()
    request = ask(clerk, payments, hours=1, starts_at=now + HOUR, now=now)
    elevations.approve(request, actor=approver, now=now)
    assert level(clerk, "payments", now=now) == "none"
    assert level(clerk, "payments", now=now + HOUR + datetime.timedelta(minutes=1)) == "full"
    assert level(clerk, "payments", now=now + 2 * HOUR) == "none"

    assert elevations.record_transitions(now) == elevations.Recorded(0, 0)
    assert elevations.record_transitions(now + 90 * datetime.timedelta(minutes=1)) == (
        elevations.Recorded(activated=1, expired=0)
    )
    assert elevations.record_transitions(now + 3 * HOUR) == elevations.Recorded(0, 1)
    assert elevations.record_transitions(now + 4 * HOUR) == elevations.Recorded(0, 0)
    assert actions()[-2:] == ["elevation_activated", "elevation_expired"]


def test_user_eligibility_is_given_and_taken_with_a_reason(owner, admin_user):
    group = make_role_group(owner, "Audit readers", {"user_activity": "read"})
    person = make_user(owner, privilege_level=3)
    with pytest.raises(ValidationError):
        elevations.make_eligible(person, group, actor=admin_user, reason="")
    eligibility = elevations.make_eligible(person, group, actor=admin_user, reason="Audit week")
    assert [g.name for g in elevations.eligible_groups(person)] == ["Audit readers"]
    with pytest.raises(ValidationError, match="already eligible"):
        elevations.make_eligible(person, group, actor=admin_user, reason="Again")
    elevations.remove_eligibility(eligibility, actor=admin_user, reason="Audit over")
    assert elevations.eligible_groups(person) == []
    assert actions() == ["eligibility_changed", "eligibility_changed"]


def test_role_eligibility_is_no_escalation(owner, payments):
    manager = make_user(owner, grants={catalog.USER_GROUPS: "full", "invoices": "read"})
    role = make_role(owner, "Clerk")
    with pytest.raises(EscalationRefused):
        elevations.set_role_eligibility(role, [payments], actor=manager, reason="x")
    small = make_role_group(owner, "Small", {"invoices": "read"})
    changes = elevations.set_role_eligibility(role, [small], actor=manager, reason="Cover")
    assert changes == {"eligible_role_groups": [[], ["Small"]]}


def test_a_miss_with_elevations_stays_at_two_queries(
    clerk, approver, payments, django_assert_num_queries
):
    elevations.approve(ask(clerk, payments), actor=approver)
    user = type(clerk).objects.select_related("owner").get(pk=clerk.pk)
    permissions.local_entries.clear()
    from django.core.cache import cache

    cache.clear()
    with django_assert_num_queries(2):
        assert permissions.for_user(user).level("payments") == "full"
    with django_assert_num_queries(0):
        permissions.for_user(user)


def test_denial_needs_a_reason_and_tells_the_requester(clerk, approver, payments):
    request = ask(clerk, payments)
    with pytest.raises(ValidationError):
        elevations.deny(request, actor=approver, reason=" ")
    elevations.deny(request, actor=approver, reason="Use the shared run instead")
    run_due()
    assert mail.outbox[-1].to == [clerk.email]
    assert "Use the shared run instead" in mail.outbox[-1].body


def test_approvers_are_emailed_when_someone_asks(owner, clerk, approver, payments):
    make_user(owner, username="weak", grants={catalog.ACCESS_REQUESTS: catalog.APPROVE})
    ask(clerk, payments)
    run_due()
    assert [m.to for m in mail.outbox] == [[approver.email]]  # only who could approve it
    assert "Month-end payment run" in mail.outbox[0].body


def test_break_glass_needs_an_emergency_account_and_tells_every_approver(
    owner, clerk, approver, payments
):
    with pytest.raises(PermissionDenied):
        elevations.break_glass(clerk, payments, reason="Outage", hours=1)
    clerk.is_emergency_account = True
    clerk.save()
    with pytest.raises(ValidationError):
        elevations.break_glass(clerk, payments, reason="", hours=1)
    request = elevations.break_glass(clerk, payments, reason="Payment gateway down", hours=1)
    run_due()
    assert request.break_glass and request.state == RequestState.APPROVED
    assert level(clerk, "payments") == "full"
    assert actions() == ["break_glass"]
    assert mail.outbox[-1].to == [approver.email]
    assert mail.outbox[-1].subject.startswith("EMERGENCY ACCESS")


def test_the_outbox_carries_the_email_to_the_approvers(owner, clerk, approver, payments):
    from delivery.models import OutboundEmail

    ask(clerk, payments)
    assert OutboundEmail.objects.filter(to__icontains=approver.email).exists()


def test_who_has_access_explains_an_elevation(owner, clerk, approver, payments):
    from roles.reports import explain_access

    request = elevations.approve(ask(clerk, payments), actor=approver)
    (row,) = explain_access(owner, "payments", [type(clerk).objects.get(pk=clerk.pk)])
    assert row.level == "full"
    assert f"request #{request.pk}" in row.through[-1]


def test_a_grant_of_a_retired_area_does_not_break_a_request(owner, clerk, payments):
    from roles.models import Grant

    Grant.objects.create(role_group=payments, area="retired_area", level="full")
    assert ask(clerk, payments).state == RequestState.PENDING


def test_self_activation_is_set_on_the_group_and_audited(owner, admin_user, payments):
    from roles import services

    services.update_role_group(
        payments,
        actor=admin_user,
        reason="Run day is routine",
        expected_row_version=payments.row_version,
        name=payments.name,
        description="",
        self_activation=True,
    )
    payments.refresh_from_db()
    assert payments.self_activation
    event = AuditEvent.objects.get(action="role_group_changed")
    assert event.changes == {"self_activation": [False, True]}
