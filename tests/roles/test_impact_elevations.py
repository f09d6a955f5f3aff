"""Impact preview with elevations in force: an approved just-in-time request is part of the
user's access until it ends, so a preview counts it before and after, reaches the users who
hold an elevation of a changed group, and marks what an elevation lifts with its end."""

import datetime

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from roles import catalog, elevations, permissions, services, sod
from roles.impact import Proposal
from tests.builders import make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)


@pytest.fixture
def groups(owner):
    return {
        "readers": make_role_group(owner, "Invoice readers", {"invoices": "read"}),
        "admins": make_role_group(owner, "Invoice admins", {"invoices": "full"}),
        "payers": make_role_group(owner, "Payment releasers", {"payments": "full"}),
    }


@pytest.fixture
def role(owner, groups):
    clerk = make_role(owner, "Clerk", groups=[groups["readers"]])
    clerk.eligible_role_groups.add(groups["admins"], groups["payers"])
    return clerk


@pytest.fixture
def clara(owner, role):
    return make_user(owner, username="clara", role=role)


def elevate(user, group, approver, hours=2, now=None):
    """Ask for `group` and have `approver` approve it: an elevation in force from now."""
    request = elevations.request_access(
        user, group, justification="Month-end", hours=hours, now=now
    )
    return elevations.approve(request, actor=approver, now=now)


def test_a_change_hidden_by_an_elevation_is_shown_with_its_end(owner, clara, groups, admin_user):
    elevation = elevate(clara, groups["admins"], admin_user)
    impact = services.impact_preview(owner, grants={groups["readers"].pk: {"invoices": "none"}})
    row = impact.for_user(clara.pk)
    assert row is not None, "the change takes effect when the elevation ends: it is listed"
    [change] = row.changes
    assert (change.area.code, change.old, change.new) == ("invoices", "full", "full")
    assert change.old_until == change.new_until == elevation.ends_at
    assert (change.old_standing, change.new_standing) == ("read", "none")
    assert change.takes_effect_at == elevation.ends_at and not change.is_raise
    # What separation of duties reads: the elevation is held, before and after.
    assert row.levels_before["invoices"] == row.levels_after["invoices"] == "full"


def test_without_the_elevation_the_same_change_lowers_at_once(owner, clara, groups):
    impact = services.impact_preview(owner, grants={groups["readers"].pk: {"invoices": "none"}})
    [change] = impact.for_user(clara.pk).changes
    assert (change.old, change.new, change.old_until, change.takes_effect_at) == (
        "read",
        "none",
        None,
        None,
    )


def test_a_change_to_the_elevated_group_reaches_its_holder(owner, clara, groups, admin_user):
    elevation = elevate(clara, groups["admins"], admin_user)
    impact = services.impact_preview(owner, grants={groups["admins"].pk: {"invoices": "read"}})
    row = impact.for_user(clara.pk)
    assert row is not None  # no role of hers includes the group: the elevation does
    [change] = row.changes
    assert (change.old, change.new) == ("full", "read")
    assert change.old_until == elevation.ends_at and change.new_until is None
    assert change.takes_effect_at is None and not change.is_raise
    assert row.levels_after["invoices"] == "read"


def test_an_ended_or_later_elevation_is_not_counted(owner, clara, groups, admin_user):
    now = timezone.now()
    elevate(clara, groups["admins"], admin_user, hours=1, now=now - 2 * HOUR)  # over
    later = elevations.request_access(
        clara,
        groups["payers"],
        justification="Tomorrow's run",
        hours=2,
        starts_at=now + 3 * HOUR,
    )
    elevations.approve(later, actor=admin_user)
    impact = services.impact_preview(owner, grants={groups["readers"].pk: {"invoices": "none"}})
    [change] = impact.for_user(clara.pk).changes
    assert (change.old, change.new, change.old_until) == ("read", "none", None)
    assert "payments" not in impact.for_user(clara.pk).levels_before


def test_the_prediction_matches_what_the_resolver_gives_after_saving(
    owner, clara, groups, admin_user
):
    elevate(clara, groups["admins"], admin_user)
    impact = services.impact_preview(owner, grants={groups["admins"].pk: {"invoices": "read"}})
    predicted = impact.for_user(clara.pk).levels_after
    services.set_grants(
        groups["admins"],
        {"invoices": "read"},
        actor=admin_user,
        reason="Narrower",
        expected_row_version=None,
    )
    clara.refresh_from_db()
    held = permissions.compute(clara, catalog.Channel.APPLICATION, explain=False)
    assert held.levels == predicted == {"invoices": "read"}


def test_separation_of_duties_counts_an_elevation_in_force(owner, clara, groups, admin_user):
    sod.save_rule(
        None,
        {
            "name": "Raise and release",
            "left": [["invoices", "full"]],
            "right": [["payments", "full"]],
        },
        actor=admin_user,
        reason="Finance controls",
    )
    elevate(clara, groups["admins"], admin_user)
    proposal = Proposal(user_groups={clara.pk: {groups["payers"].pk}})
    row = services.impact_preview(owner, proposal).for_user(clara.pk)
    assert row.levels_before["invoices"] == "full" and "payments" not in row.levels_before
    assert row.levels_after["invoices"] == "full" and row.levels_after["payments"] == "full"
    # Payments as an extra group while invoices full is held through the elevation: refused.
    with pytest.raises(sod.SodRefused):
        sod.check(owner, proposal, actor=admin_user)


def test_the_query_count_does_not_grow_with_elevations(owner, role, groups, admin_user):
    def measure():
        with CaptureQueriesContext(connection) as ctx:
            impact = services.impact_preview(
                owner, Proposal(grants={groups["readers"].pk: {"invoices": "none"}})
            )
        return len(ctx.captured_queries), impact.count

    elevate(make_user(owner, role=role), groups["admins"], admin_user)
    one = measure()
    for _ in range(5):
        elevate(make_user(owner, role=role), groups["admins"], admin_user)
    six = measure()
    assert (one[1], six[1]) == (1, 6)
    assert one[0] == six[0]


def test_the_preview_screen_marks_the_elevation(signed_in, owner, clara, groups, admin_user):
    elevation = elevate(clara, groups["admins"], admin_user)
    client = signed_in(admin_user)
    url = reverse("roles:rolegroup_matrix", args=[groups["readers"].pk])
    response = client.post(url, {"cell-invoices": "none", "row_version": 1, "action": "preview"})
    assert response.status_code == 200
    page = response.content.decode()
    until = timezone.localtime(elevation.ends_at).strftime("%H:%M")
    assert f"elevated until {until}" in page
    assert "then read" in page and "then none" in page
    assert "lowered when the elevation ends" in page
