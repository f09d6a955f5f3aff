"""Impact preview: it predicts exactly what applying the change does, in a constant query count."""

import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.choices import AccessSource
from accounts.models import User
from accounts.users import set_user_access
from roles import catalog, permissions, services
from roles.impact import Proposal
from roles.resolver import OverrideRule
from tests.builders import make_override, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

AREAS = ["invoices", "payments", "tariffs", "dp_user_activity", "users", "reports"]


def snapshot(owner):
    result = {}
    for user in User.objects.select_related("owner").filter(owner=owner):
        levels = {}
        for channel in catalog.Channel.ALL:
            levels.update(permissions.compute(user, channel).levels)
        result[user.username] = levels
    return result


def actual_changes(before, after):
    changes = {}
    for name in before:
        moved = [
            (a, before[name].get(a, "none"), after[name].get(a, "none"))
            for a in sorted(set(before[name]) | set(after[name]))
            if before[name].get(a, "none") != after[name].get(a, "none")
        ]
        if moved:
            changes[name] = sorted(moved)
    return changes


def predicted(impact):
    return {name: sorted(changes) for name, changes in impact.as_dict().items()}


@pytest.fixture
def world(owner, admin_user):
    rng = random.Random(7)
    groups = [
        make_role_group(
            owner,
            f"G{n}",
            {a: rng.choice(catalog.get(a).levels) for a in rng.sample(AREAS, 3)},
        )
        for n in range(5)
    ]
    roles = [make_role(owner, f"R{n}", groups=rng.sample(groups, 2)) for n in range(3)]
    for n in range(25):
        user = make_user(
            owner,
            username=f"u{n}",
            role=rng.choice([*roles, None]),
            privilege_level=rng.choice([1, 5, 9]),
            allow_login=rng.random() > 0.1,
        )
        user.extra_role_groups.set(rng.sample(groups, rng.choice([0, 0, 1])))
        if rng.random() < 0.3:
            area = rng.choice(AREAS)
            make_override(user, area, rng.choice(catalog.get(area).levels))
    return groups, roles


def test_matrix_preview_matches_what_saving_does(owner, admin_user, world):
    groups, _ = world
    cells = {"invoices": "full", "payments": "none", "dp_user_activity": "read", "tariffs": "read"}
    before = snapshot(owner)
    impact = services.impact_preview(owner, grants={groups[0].pk: cells})
    services.set_grants(groups[0], cells, actor=admin_user, expected_row_version=1, reason="")
    assert predicted(impact) == actual_changes(before, snapshot(owner))
    assert impact.count > 0


def test_role_preview_matches_what_saving_does(owner, admin_user, world):
    groups, roles = world
    new = {groups[3].pk, groups[4].pk}
    before = snapshot(owner)
    impact = services.impact_preview(owner, role_groups={roles[0].pk: new})
    services.set_role_groups(
        roles[0], [groups[3], groups[4]], actor=admin_user, expected_row_version=1, reason=""
    )
    assert predicted(impact) == actual_changes(before, snapshot(owner))


def test_user_preview_matches_assignments_and_overrides(owner, admin_user, world):
    groups, roles = world
    target = User.objects.get(username="u3")
    before = snapshot(owner)
    impact = services.impact_preview(
        owner,
        user_roles={target.pk: roles[2].pk},
        user_groups={target.pk: {groups[1].pk}},
        overrides={target.pk: {"reports": OverrideRule("reports", "run", "cover")}},
    )
    set_user_access(
        target,
        role=roles[2],
        extra_groups=[groups[1]],
        actor=admin_user,
        reason="",
        source=AccessSource.SCREEN,
    )
    services.set_override(target, "reports", "run", actor=admin_user, reason="cover")
    assert predicted(impact) == actual_changes(before, snapshot(owner))


def test_a_change_that_moves_nothing_lists_nobody(owner, world):
    groups, _ = world
    impact = services.impact_preview(owner, grants={groups[0].pk: groups[0].levels()})
    assert impact.users == []


def test_query_count_does_not_grow_with_users(owner, django_assert_max_num_queries):
    group = make_role_group(owner, "Finance", {"invoices": "read"})
    role = make_role(owner, "Clerk", groups=[group])
    counts = []
    for n in (3, 40):
        for _ in range(n - User.objects.filter(role=role).count()):
            user = make_user(owner, role=role)
            make_override(user, "payments", "read")
            user.extra_role_groups.add(make_role_group(owner, grants={"notes": "read"}))
        with CaptureQueriesContext(connection) as ctx:
            impact = services.impact_preview(
                owner, Proposal(grants={group.pk: {"invoices": "full"}})
            )
        assert impact.count == n
        counts.append(len(ctx.captured_queries))
    assert counts[0] == counts[1]
    assert counts[1] <= 12  # 9 reads (one for the elevations in force), a savepoint for JIT
