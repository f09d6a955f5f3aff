"""Access review services: scope and snapshots, decisions, applying through the domain services,
refusals recorded on items, closing."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.choices import AccessSource
from accounts.users import set_user_access
from audit.choices import AuditAction
from audit.models import AuditEvent
from reviews import services
from reviews.choices import CampaignStatus, Decision, ScopeKind
from reviews.models import ReviewItem
from roles import catalog
from roles.models import Grant, PermissionOverride
from tests.builders import (
    make_department,
    make_override,
    make_role,
    make_role_group,
    make_user,
)

pytestmark = pytest.mark.django_db

TOMORROW = timezone.localdate() + datetime.timedelta(days=1)


@pytest.fixture
def clerk_role(owner):
    group = make_role_group(owner, "Billing clerks", grants={"users": "read", "invoices": "full"})
    return make_role(owner, "Billing clerk", groups=[group])


@pytest.fixture
def clerk(owner, clerk_role):
    return make_user(
        owner, username="clara", first_name="Clara", last_name="Clerk", role=clerk_role
    )


def open_campaign(actor, **kwargs):
    kwargs.setdefault("name", "Q3 review")
    kwargs.setdefault("scope_kind", ScopeKind.ALL)
    kwargs.setdefault("reviewers", [actor])
    kwargs.setdefault("due_date", TOMORROW)
    return services.create_campaign(actor=actor, **kwargs)


def item_of(campaign, user) -> ReviewItem:
    return campaign.items.get(user=user)


def test_opening_a_campaign_needs_data_protection_responsibilities(owner, clerk):
    reviewer = make_user(owner, grants={catalog.USER_ACTIVITY: "read", catalog.USERS: "full"})
    with pytest.raises(PermissionDenied):
        open_campaign(reviewer)


def test_campaign_snapshots_everyone_in_scope(owner, admin_user, clerk, clerk_role):
    override = make_override(clerk, catalog.USER_ACTIVITY, "read", reason="Audit project")
    extra = make_role_group(owner, "Reports", grants={"parameters": "read"})
    clerk.extra_role_groups.add(extra)

    campaign = open_campaign(admin_user)

    assert campaign.status == CampaignStatus.OPEN
    assert set(campaign.items.values_list("user__username", flat=True)) == {"admin", "clara"}
    snap = item_of(campaign, clerk).snapshot
    assert snap["role"] == "Billing clerk"
    assert snap["extra_groups"] == ["Reports"]
    assert snap["overrides"][0]["id"] == override.pk
    assert snap["overrides"][0]["level"] == "read"
    assert snap["overrides"][0]["group_level"] == "none"
    assert snap["application"] == {
        "users": "read",
        "invoices": "full",
        "parameters": "read",
        catalog.USER_ACTIVITY: "read",
    }
    assert snap["api"] == {}
    event = AuditEvent.objects.get(action=AuditAction.REVIEW_CHANGED)
    assert event.target_label == "Q3 review"
    assert event.context["users"] == 2


def test_snapshot_takes_the_same_number_of_queries_for_1_or_20_users(owner, admin_user, clerk_role):
    def queries_to_open(name):
        with CaptureQueriesContext(connection) as captured:
            campaign = open_campaign(
                admin_user, name=name, scope_kind=ScopeKind.ROLE, role=clerk_role
            )
        return len(captured), campaign.items.count()

    open_campaign(admin_user, name="warm-up")  # the actor's permission cache

    def add_users(n):
        for _ in range(n):
            user = make_user(owner, role=clerk_role)
            make_override(user, catalog.PARAMETERS, "read")
            user.extra_role_groups.add(make_role_group(owner, grants={"invoices": "read"}))

    add_users(1)
    few, one = queries_to_open("One")
    add_users(19)
    many, twenty = queries_to_open("Twenty")
    assert (one, twenty) == (1, 20)
    # The same count whatever the number of users; 2 of them are the webhook and SIEM hooks
    # asking, for the campaign's audit event, whether the owner has subscribers, and 2 load
    # what the users are eligible for (their roles' and their own).
    assert few == many <= 24


def test_snapshots_do_not_change_when_permissions_change_later(
    owner, admin_user, clerk, clerk_role
):
    campaign = open_campaign(admin_user)
    before = item_of(campaign, clerk).snapshot

    Grant.objects.filter(role_group__name="Billing clerks", area="invoices").update(level="read")
    make_override(clerk, catalog.PARAMETERS, "full")
    other = make_role(owner, "Other")
    set_user_access(clerk, role=other, actor=admin_user, reason="x", source=AccessSource.SCREEN)

    assert item_of(campaign, clerk).snapshot == before
    assert before["application"]["invoices"] == "full"
    assert before["role"] == "Billing clerk"


def test_scope_by_role_department_and_area(owner, admin_user, clerk, clerk_role):
    sales = make_department(owner, "Sales")
    seller = make_user(owner, username="sam")
    seller.departments.add(sales)

    by_role = open_campaign(admin_user, scope_kind=ScopeKind.ROLE, role=clerk_role)
    by_department = open_campaign(admin_user, scope_kind=ScopeKind.DEPARTMENT, department=sales)
    by_area = open_campaign(admin_user, scope_kind=ScopeKind.AREA, area="invoices", level="full")

    assert list(by_role.items.values_list("user", flat=True)) == [clerk.pk]
    assert list(by_department.items.values_list("user", flat=True)) == [seller.pk]
    assert set(by_area.items.values_list("user", flat=True)) == {clerk.pk, admin_user.pk}
    assert by_area.scope_text() == "Users reaching full on Invoices"


def test_an_empty_scope_is_refused(owner, admin_user):
    empty = make_role(owner, "Nobody's")
    with pytest.raises(ValidationError, match="Nobody is in this scope"):
        open_campaign(admin_user, scope_kind=ScopeKind.ROLE, role=empty)


def test_decisions_need_a_comment_unless_keep(admin_user, clerk):
    campaign = open_campaign(admin_user)
    item = item_of(campaign, clerk)
    with pytest.raises(ValidationError, match="comment is required"):
        services.record_decision(item, actor=admin_user, decision=Decision.DEACTIVATE)

    services.record_decision(item, actor=admin_user, decision=Decision.KEEP)
    item.refresh_from_db()
    assert item.decision == Decision.KEEP
    assert item.decided_by == admin_user
    event = AuditEvent.objects.filter(action=AuditAction.REVIEW_CHANGED).latest("seq")
    assert event.subject_user_id == clerk.pk
    assert event.changes == {"decision on Clara Clerk": ["pending", "keep"]}


def test_only_reviewers_or_user_administrators_decide(owner, admin_user, clerk):
    outsider = make_user(owner, grants={catalog.USER_ACTIVITY: "read"})
    campaign = open_campaign(admin_user)
    with pytest.raises(PermissionDenied):
        services.record_decision(item_of(campaign, clerk), actor=outsider, decision="keep")

    listed = make_user(owner, grants={catalog.USER_ACTIVITY: "read"})
    campaign = open_campaign(admin_user, name="With a listed reviewer", reviewers=[listed])
    services.record_decision(item_of(campaign, clerk), actor=listed, decision="keep")


def test_nobody_decides_on_their_own_access(admin_user, clerk):
    campaign = open_campaign(admin_user)
    with pytest.raises(ValidationError, match="own access"):
        services.record_decision(item_of(campaign, admin_user), actor=admin_user, decision="keep")


def test_applied_decisions_go_through_the_domain_services_with_the_campaign_as_reason(
    owner, admin_user, clerk
):
    leaver = make_user(owner, username="leo", first_name="Leo", last_name="Leaver")
    auditor_role = make_role(owner, "Auditor", groups=[make_role_group(owner, grants={})])
    override = make_override(clerk, catalog.PARAMETERS, "full", reason="Migration")
    campaign = open_campaign(admin_user)
    services.record_decision(
        item_of(campaign, leaver), actor=admin_user, decision="deactivate", comment="Left in May"
    )
    services.record_decision(
        item_of(campaign, clerk),
        actor=admin_user,
        decision="remove_override",
        override_id=override.pk,
        comment="Migration is over",
    )

    result = services.apply_decisions(campaign, actor=admin_user)

    assert len(result.applied) == 2 and result.refused == []
    leaver.refresh_from_db()
    assert leaver.allow_login is False
    deactivated = AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATED)
    assert deactivated.reason == "Access review: Q3 review"
    assert deactivated.details == "Left in May"
    assert deactivated.actor_id == admin_user.pk
    removed = AuditEvent.objects.get(action=AuditAction.OVERRIDE_REMOVED)
    assert removed.reason == "Access review: Q3 review"
    assert not PermissionOverride.objects.filter(pk=override.pk).exists()
    item = item_of(campaign, leaver)
    assert item.applied_at is not None
    assert item.outcome == "Deactivated: Login flag removed."

    # A changed role is applied the same way.
    other = open_campaign(admin_user, name="Roles")
    services.record_decision(
        item_of(other, clerk),
        actor=admin_user,
        decision="change_role",
        new_role=auditor_role,
        comment="Moved to audit",
    )
    services.apply_decisions(other, actor=admin_user)
    clerk.refresh_from_db()
    assert clerk.role == auditor_role
    changed = AuditEvent.objects.filter(action=AuditAction.USER_CHANGED).latest("seq")
    assert changed.reason == "Access review: Roles"
    assert changed.changes == {"role": ["Billing clerk", "Auditor"]}


def test_a_refused_decision_is_recorded_on_the_item(owner, admin_user, clerk):
    senior = make_user(owner, username="sen", privilege_level=9)
    reviewer = make_user(
        owner, grants={catalog.USER_ACTIVITY: "read", catalog.USERS: "full"}, privilege_level=3
    )
    campaign = open_campaign(admin_user, reviewers=[reviewer])
    services.record_decision(
        item_of(campaign, senior), actor=reviewer, decision="deactivate", comment="Unknown"
    )
    services.record_decision(item_of(campaign, clerk), actor=reviewer, decision="keep")

    result = services.apply_decisions(campaign, actor=reviewer)

    assert [i.user_id for i in result.refused] == [senior.pk]
    senior.refresh_from_db()
    assert senior.allow_login is True
    item = item_of(campaign, senior)
    assert item.applied_at is None
    assert "privilege level 9" in item.apply_error
    assert not AuditEvent.objects.filter(action=AuditAction.USER_DEACTIVATED).exists()
    # Deciding again clears the refusal.
    services.record_decision(item, actor=reviewer, decision="keep")
    item.refresh_from_db()
    assert item.apply_error == ""


def test_close_is_refused_while_items_are_open(owner, admin_user, clerk):
    campaign = open_campaign(admin_user)
    with pytest.raises(ValidationError, match="still undecided or not applied"):
        services.close_campaign(campaign, actor=admin_user)

    services.record_decision(item_of(campaign, clerk), actor=admin_user, decision="keep")
    other_admin = make_user(owner, grants={catalog.USERS: "full"})
    services.record_decision(item_of(campaign, admin_user), actor=other_admin, decision="keep")
    with pytest.raises(ValidationError, match="2 items are still"):
        services.close_campaign(campaign, actor=admin_user)  # decided, not applied

    services.apply_decisions(campaign, actor=admin_user)
    services.close_campaign(campaign, actor=admin_user)

    campaign.refresh_from_db()
    assert campaign.status == CampaignStatus.CLOSED
    assert campaign.closed_by == admin_user
    event = AuditEvent.objects.filter(action=AuditAction.REVIEW_CHANGED).latest("seq")
    assert event.changes == {"status": ["open", "closed"]}
    with pytest.raises(ValidationError, match="closed"):
        services.record_decision(item_of(campaign, clerk), actor=admin_user, decision="keep")
