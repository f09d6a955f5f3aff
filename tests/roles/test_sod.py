"""Separation of duties: rules over the matrix, checked at every door that moves access."""

import datetime

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from accounts.choices import AccessSource
from accounts.users import set_user_access
from audit.models import AuditEvent
from roles import catalog, elevations, services, sod, transfer
from roles.choices import SodEffect
from roles.models import Grant, PermissionOverride, SodRule
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

DAY = datetime.timedelta(days=1)


@pytest.fixture
def rule(owner, admin_user):
    return sod.save_rule(
        None,
        {
            "name": "Invoicing vs recording payments",
            "left": [["invoices", "full"]],
            "right": [["payments", "full"]],
        },
        actor=admin_user,
        reason="Finance controls",
    )


@pytest.fixture
def invoicing(owner):
    return make_role_group(owner, "Invoicing", {"invoices": "full"})


@pytest.fixture
def paying(owner):
    return make_role_group(owner, "Paying", {"payments": "full"})


@pytest.fixture
def clerk(owner, invoicing):
    return make_user(
        owner,
        username="ivy",
        role=make_role(owner, "Invoice clerk", [invoicing]),
        privilege_level=3,
    )


def levels(user):
    from roles import permissions

    return permissions.compute(type(user).objects.get(pk=user.pk), "application").levels


def blocked_events():
    sod.flush_refusals()
    return AuditEvent.objects.filter(action="sod_blocked")


# Rules -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, field",
    [
        ({"left": [], "right": [["payments", "full"]]}, "left"),
        ({"left": [["invoices", "full"]], "right": [["invoices", "read"]]}, "right"),
        ({"left": [["nowhere", "full"]], "right": [["payments", "full"]]}, "left"),
        ({"left": [["invoices", "run"]], "right": [["payments", "full"]]}, "left"),
        ({"left": [["api_users", "write"]], "right": [["payments", "full"]]}, "left"),
        (
            {"left": [["invoices", "full"]], "right": [["payments", "full"]], "effect": "x"},
            "effect",
        ),
        ({"name": " ", "left": [["invoices", "full"]], "right": [["payments", "full"]]}, "name"),
    ],
)
def test_a_bad_rule_is_refused_with_a_message_and_nothing_saved(admin_user, data, field):
    with pytest.raises(ValidationError) as refused:
        sod.save_rule(None, {"name": "R", **data}, actor=admin_user, reason="x")
    assert field in refused.value.message_dict
    assert not SodRule.objects.exists()


def test_rule_names_are_unique_and_changes_are_audited(admin_user, rule):
    with pytest.raises(ValidationError, match="Another rule"):
        sod.save_rule(
            None,
            {"name": rule.name.upper(), "left": rule.left, "right": rule.right},
            actor=admin_user,
            reason="x",
        )
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["sod_rule_created"]


def test_managing_rules_needs_full_on_user_groups(owner):
    clerk = make_user(owner, grants={"invoices": "full"})
    with pytest.raises(PermissionDenied):
        sod.save_rule(
            None,
            {"name": "R", "left": [["invoices", "full"]], "right": [["payments", "full"]]},
            actor=clerk,
            reason="x",
        )


def test_starter_rules_use_real_areas_and_install_once(admin_user):
    created = sod.install_starter_rules(actor=admin_user)
    assert len(created) == len(sod.STARTER_RULES) == 5
    assert sod.install_starter_rules(actor=admin_user) == []
    for made in created:
        assert sod.describe_side(made.left, made.left_join)


# Every door refuses a blocking combination, with nothing saved ----------------------------------


def door_user_screen(admin_user, clerk, paying, **_):
    set_user_access(
        clerk, extra_groups=[paying], actor=admin_user, reason="", source=AccessSource.SCREEN
    )


def door_api(admin_user, clerk, paying, **_):
    set_user_access(
        clerk, extra_groups=[paying], actor=admin_user, reason="", source=AccessSource.API
    )


def door_review(admin_user, clerk, owner, paying, **_):
    both = make_role(owner, "Both", [paying, *clerk.role.role_groups.all()])
    set_user_access(clerk, role=both, actor=admin_user, reason="", source=AccessSource.REVIEW)


def door_matrix(admin_user, invoicing, **_):
    services.set_grants(
        invoicing, {"payments": "full"}, actor=admin_user, reason="", expected_row_version=1
    )


def door_role(admin_user, clerk, paying, **_):
    services.set_role_groups(
        clerk.role,
        [*clerk.role.role_groups.all(), paying],
        actor=admin_user,
        reason="",
        expected_row_version=1,
    )


def door_override(admin_user, clerk, **_):
    services.set_override(clerk, "payments", "full", actor=admin_user, reason="Cover")


def door_elevation(admin_user, clerk, paying, owner, **_):
    clerk.role.eligible_role_groups.add(paying)
    request = elevations.request_access(clerk, paying, justification="Run", hours=1)
    approver = make_user(
        owner, grants={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "full"}
    )
    elevations.approve(request, actor=approver)


def door_import(admin_user, owner, invoicing, **_):
    model = transfer.parse_role_model(
        __import__("json").dumps(
            {
                **transfer.export_role_model(owner),
                "role_groups": [
                    {
                        "name": "Invoicing",
                        "kind": "application",
                        "description": "",
                        "grants": {"invoices": "full", "payments": "full"},
                    }
                ],
                "roles": [
                    {
                        "name": "Invoice clerk",
                        "description": "",
                        "role_groups": ["Invoicing"],
                    }
                ],
            }
        )
    )
    transfer.import_role_model(model, actor=admin_user, reason="Sync")


DOORS = [
    door_user_screen,
    door_api,
    door_review,
    door_matrix,
    door_role,
    door_override,
    door_elevation,
    door_import,
]


@pytest.mark.parametrize("door", DOORS, ids=lambda d: d.__name__)
def test_each_door_refuses_a_blocking_combination(
    door, owner, admin_user, rule, clerk, invoicing, paying
):
    before = dict(levels(clerk))
    ours = Grant.objects.filter(role_group__in=[invoicing, paying])
    grants_before = sorted(ours.values_list("role_group_id", "area", "level"))
    with pytest.raises(sod.SodRefused) as refused:
        door(admin_user=admin_user, clerk=clerk, owner=owner, invoicing=invoicing, paying=paying)
    assert "Invoicing vs recording payments" in refused.value.messages[0]
    assert "Invoices (full)" in refused.value.messages[0]
    assert levels(clerk) == before
    assert sorted(ours.values_list("role_group_id", "area", "level")) == grants_before
    assert not PermissionOverride.objects.exists()
    event = blocked_events().get()
    assert event.context["rules"] == ["Invoicing vs recording payments"]


def test_holding_one_side_or_an_unrelated_change_passes(admin_user, rule, clerk, owner):
    reports = make_role_group(owner, "Reports", {"reports": "run"})
    set_user_access(
        clerk, extra_groups=[reports], actor=admin_user, reason="", source=AccessSource.SCREEN
    )
    assert levels(clerk)["reports"] == "run"
    assert not blocked_events().exists()


def test_the_screen_shows_the_rule_and_records_the_refusal(
    signed_in, admin_user, rule, clerk, paying
):
    client = signed_in(admin_user)
    response = client.post(
        f"/access/users/{clerk.pk}/overrides/",
        {"area": "payments", "level": "full", "reason": "Cover", "previewed": "payments:full:"},
    )
    assert response.status_code == 400
    assert "Invoicing vs recording payments" in response.content.decode()
    assert AuditEvent.objects.filter(action="sod_blocked").count() == 1
    assert not PermissionOverride.objects.exists()


# Exceptions ------------------------------------------------------------------------------------


def test_an_exception_rule_lets_the_change_through_only_with_an_approved_exception(
    owner, admin_user, rule, clerk, paying
):
    rule.effect = SodEffect.EXCEPTION
    rule.save()
    screen = {"actor": admin_user, "reason": "", "source": AccessSource.SCREEN}
    with pytest.raises(sod.SodRefused, match="needs an approved exception"):
        set_user_access(clerk, extra_groups=[paying], **screen)

    approver = make_user(owner, grants={catalog.ACCESS_REQUESTS: catalog.APPROVE})
    later = timezone.now() + DAY
    with pytest.raises(PermissionDenied, match="other than the person asking"):
        sod.grant_exception(
            rule, clerk, actor=admin_user, requested_by=admin_user, reason="x", expires_at=later
        )
    with pytest.raises(ValidationError):
        sod.grant_exception(
            rule,
            clerk,
            actor=approver,
            requested_by=admin_user,
            reason="Quarter close",
            expires_at=timezone.now() - DAY,
        )
    sod.grant_exception(
        rule,
        clerk,
        actor=approver,
        requested_by=admin_user,
        reason="Quarter close",
        expires_at=later,
    )
    set_user_access(clerk, extra_groups=[paying], **screen)
    assert levels(clerk)["payments"] == "full"
    assert AuditEvent.objects.filter(action="sod_exception_granted").count() == 1


def test_a_blocking_rule_takes_no_exception(owner, admin_user, rule, clerk):
    approver = make_user(owner, grants={catalog.ACCESS_REQUESTS: catalog.APPROVE})
    with pytest.raises(ValidationError, match="takes no exceptions"):
        sod.grant_exception(
            rule,
            clerk,
            actor=approver,
            requested_by=admin_user,
            reason="x",
            expires_at=timezone.now() + DAY,
        )


# Identity providers ----------------------------------------------------------------------------


def test_an_identity_provider_gets_the_rest_applied_and_the_conflict_withheld(
    owner, rule, clerk, paying
):
    reports = make_role_group(owner, "Reports", {"reports": "run"})
    set_user_access(
        clerk,
        extra_groups=[paying, reports],
        actor=None,
        actor_label="SCIM: Okta",
        reason="",
        source=AccessSource.SCIM,
    )
    assert sorted(g.name for g in clerk.extra_role_groups.all()) == ["Reports"]
    assert levels(clerk).get("payments", "none") == "none"
    withheld = AuditEvent.objects.get(action="sod_withheld")
    assert withheld.context["withheld"] == [["group Paying", "Invoicing vs recording payments"]]
    assert "Paying left out" in withheld.details


# The report ------------------------------------------------------------------------------------


def test_violators_are_found_in_sql(
    owner, admin_user, rule, clerk, paying, django_assert_max_num_queries
):
    clerk.extra_role_groups.add(paying)  # given before the rule existed
    fine = make_user(owner, grants={"payments": "full"})
    with django_assert_max_num_queries(1):
        found = list(sod.violators(rule))
    assert sorted(u.username for u in found) == ["admin", "ivy"]  # the admin holds everything
    assert fine not in found
    other_owner = make_user(make_owner(), grants={"invoices": "full", "payments": "full"})
    assert other_owner not in found


def test_ending_an_exception_needs_an_approver_a_reason_and_one_that_is_in_force(
    owner, admin_user, rule, clerk
):
    rule.effect = SodEffect.EXCEPTION
    rule.save()
    approver = make_user(owner, grants={catalog.ACCESS_REQUESTS: catalog.APPROVE})
    exception = sod.grant_exception(
        rule,
        clerk,
        actor=approver,
        requested_by=admin_user,
        reason="Quarter close",
        expires_at=timezone.now() + DAY,
    )
    plain = make_user(owner, grants={"invoices": "read"})
    with pytest.raises(PermissionDenied):
        sod.revoke_exception(exception, actor=plain, reason="Done")
    with pytest.raises(ValidationError):
        sod.revoke_exception(exception, actor=approver, reason=" ")
    assert sod.revoke_exception(exception, actor=approver, reason="Close finished") is True
    assert sod.revoke_exception(exception, actor=approver, reason="Again") is False
    assert AuditEvent.objects.filter(action="sod_exception_revoked").count() == 1
