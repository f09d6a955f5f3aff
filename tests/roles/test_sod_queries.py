"""Separation of duties in SQL (`roles.sod_queries`): the same answers as the resolver on varied
worlds (roles, extra groups, overrides that raise or restrict, elevations, platform
administrators, gates, exceptions), and exact query counts for the check and the report."""

import datetime
import random
from unittest.mock import patch

import pytest
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from roles import catalog, permissions, sod, sod_queries
from roles.choices import RequestState, SodEffect, SodJoin
from roles.impact import Proposal
from roles.models import (
    AccessRequest,
    Grant,
    PermissionOverride,
    Role,
    RoleGroup,
    SodException,
    SodRule,
)
from roles.resolver import OverrideRule
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

HOUR = datetime.timedelta(hours=1)
AREAS = ["invoices", "payments", "reports", "direct_debit_runs", "users", "dp_user_activity"]


class Rollback(Exception):
    pass


def area(code):
    return catalog.get(code)


def world(seed: int):
    """Build an owner whose people reach their access in every way the resolver knows."""
    rng = random.Random(seed)
    owner = make_owner(data_protection_min_privilege=3)
    now = timezone.now()
    groups = [
        make_role_group(
            owner,
            f"G{n}",
            {
                code: rng.choice(area(code).levels[1:])
                for code in rng.sample(AREAS, rng.randint(1, 4))
            },
        )
        for n in range(7)
    ]
    make_role_group(owner, "API", {"api_users": "write"}, kind="api")
    roles = [make_role(owner, f"R{n}", rng.sample(groups, rng.randint(0, 3))) for n in range(4)]
    users = []
    for n in range(36):
        user = make_user(
            owner,
            username=f"u{seed}-{n}",
            first_name=rng.choice(["Ana", "Ben", "Chen"]),
            last_name=f"L{rng.randint(0, 5)}",
            role=rng.choice([*roles, None]),
            privilege_level=rng.randint(0, 6),
            allow_login=rng.random() > 0.1,
            is_superuser=rng.random() < 0.06,
        )
        if rng.random() < 0.3:
            user.extra_role_groups.set(rng.sample(groups, rng.randint(1, 2)))
        if rng.random() < 0.3:
            code = rng.choice(AREAS)
            PermissionOverride.objects.create(
                user=user,
                area=code,
                level=rng.choice(area(code).levels),
                reason="test",
                expires_at=rng.choice([None, now + HOUR, now - HOUR]),
            )
        if rng.random() < 0.2:
            starts = rng.choice([now - HOUR, now + HOUR])
            AccessRequest.objects.create(
                owner=owner,
                user=user,
                role_group=rng.choice(groups),
                starts_at=starts,
                ends_at=starts + 2 * HOUR,
                requested_ends_at=starts + 2 * HOUR,
                justification="test",
                state=rng.choice([RequestState.APPROVED, RequestState.PENDING]),
            )
        users.append(user)
    api = make_user(owner, username=f"api-{seed}", kind="api", role=roles[0])
    users.append(api)
    rules = []
    for n in range(6):
        left, right = rng.sample(AREAS, 2)
        more = [c for c in AREAS if c not in (left, right)]
        left_side = [[left, rng.choice(area(left).levels[1:])]]
        if rng.random() < 0.5:
            extra = rng.choice(more)
            left_side.append([extra, rng.choice(area(extra).levels[1:])])
        rules.append(
            SodRule.objects.create(
                owner=owner,
                name=f"Rule {n}",
                left=left_side,
                left_join=rng.choice([SodJoin.ANY, SodJoin.ALL]),
                right=[[right, rng.choice(area(right).levels[1:])]],
                right_join=SodJoin.ANY,
                effect=rng.choice([SodEffect.BLOCK, SodEffect.EXCEPTION]),
            )
        )
    for user in rng.sample(users, 6):
        SodException.objects.create(
            owner=owner,
            rule=rng.choice(rules),
            user=user,
            reason="test",
            expires_at=rng.choice([now + HOUR, now - HOUR]),
        )
    return owner, groups, roles, users, rules, rng


def levels_now(users, now):
    User = get_user_model()
    fresh = User.objects.select_related("owner").in_bulk([u.pk for u in users])
    return {
        pk: permissions.compute(user, catalog.Channel.APPLICATION, now=now, explain=False).levels
        for pk, user in fresh.items()
    }


def expected_violations(rules, levels):
    return {
        rule.pk: {pk for pk, held in levels.items() if sod.violates(rule, held)} for rule in rules
    }


@pytest.mark.parametrize("seed", range(6))
def test_the_report_agrees_with_the_resolver(seed):
    owner, _, _, users, rules, _ = world(seed)
    now = timezone.now()
    expected = expected_violations(rules, levels_now(users, now))
    excepted = set(SodException.objects.in_force(now).values_list("rule_id", "user_id").distinct())

    figures = sod.violation_figures(owner, now=now)
    for rule in rules:
        people = expected[rule.pk]
        assert set(sod.violators(rule, now=now).values_list("pk", flat=True)) == people
        assert set(sod._violators_portable(rule, now=now).values_list("pk", flat=True)) == people
        found = figures.get(rule.pk, sod.Figures())
        assert found.total == len(people), rule.name
        assert found.covered == len({u for u in people if (rule.pk, u) in excepted})

    for few in (sod_queries.FEW, 0):  # rules few break, read by role; many, by the name index
        with patch.object(sod_queries, "FEW", few):
            sections = sod.report(owner, now=now, rows=5)
        first = {s.rule.pk: [u.pk for u in s.users] for s in sections}
        for rule in rules:
            by_name = sorted(
                (u for u in users if u.pk in expected[rule.pk]),
                key=lambda u: (u.last_name, u.first_name, u.pk),
            )
            assert first[rule.pk] == [u.pk for u in by_name[:5]], (few, rule.name)

    blocking = sod.blocking_violations(owner, [u.pk for u in users], now=now)
    for user in users:
        wanted = sorted(
            (r.name, r.pk)
            for r in rules
            if r.effect == SodEffect.BLOCK and user.pk in expected[r.pk]
        )
        assert sorted((name, pk) for pk, name in blocking.get(user.pk, [])) == wanted


def apply_for_real(proposal: Proposal, owner):
    """Write a proposal directly (no service, no check): what the resolver sees after it."""
    User = get_user_model()
    for group_id, cells in proposal.grants.items():
        for code, level in cells.items():
            Grant.objects.filter(role_group_id=group_id, area=code).delete()
            if level != catalog.NONE:
                Grant.objects.create(role_group_id=group_id, area=code, level=level)
    for role_id, group_ids in proposal.role_groups.items():
        Role.objects.get(pk=role_id).role_groups.set(group_ids)
    for user_id, role_id in proposal.user_roles.items():
        User.objects.filter(pk=user_id).update(role_id=role_id)
    for user_id, group_ids in proposal.user_groups.items():
        User.objects.get(pk=user_id).extra_role_groups.set(group_ids)
    for user_id, rules in proposal.overrides.items():
        for code, rule in rules.items():
            PermissionOverride.objects.filter(user_id=user_id, area=code).delete()
            if rule is not None:
                PermissionOverride.objects.create(
                    user_id=user_id, area=code, level=rule.level, reason="x"
                )


def proposals(groups, roles, users, rng):
    interactive = [u for u in users if u.kind == "interactive"]
    for _ in range(3):
        group = rng.choice(groups)
        code = rng.choice(AREAS)
        yield Proposal(grants={group.pk: {code: area(code).top}})
        user = rng.choice(interactive)
        yield Proposal(
            user_roles={user.pk: rng.choice(roles).pk},
            user_groups={user.pk: {g.pk for g in rng.sample(groups, 2)}},
        )
        yield Proposal(role_groups={rng.choice(roles).pk: {g.pk for g in rng.sample(groups, 3)}})
        code = rng.choice(AREAS)
        yield Proposal(overrides={user.pk: {code: OverrideRule(code, area(code).top, "x")}})


@pytest.mark.parametrize("seed", range(6))
def test_the_check_finds_what_the_resolver_would_hold_after_the_change(seed):
    owner, groups, roles, users, rules, rng = world(seed)
    now = timezone.now()
    excepted = set(SodException.objects.in_force(now).values_list("rule_id", "user_id"))
    before = levels_now(users, now)
    for proposal in proposals(groups, roles, users, rng):
        try:
            with transaction.atomic():
                apply_for_real(proposal, owner)
                after = levels_now(users, now)
                raise Rollback
        except Rollback:
            pass
        wanted = {
            (rule.pk, pk, rule.effect == SodEffect.EXCEPTION and (rule.pk, pk) in excepted)
            for rule in rules
            for pk in after
            if sod.violates(rule, after[pk]) and not sod.violates(rule, before[pk])
        }
        found = sod.new_findings(owner, proposal, now=now)
        assert not any(f.others for f in found)  # a small world: everyone is named
        assert {(f.rule.pk, f.user_id, f.excepted) for f in found} == wanted, proposal


def test_a_change_reaching_many_names_the_first_and_counts_the_rest(admin_user, owner):
    invoicing = make_role_group(owner, "Invoicing", {"invoices": "full"})
    clerk = make_role(owner, "Clerk", [invoicing])
    for n in range(14):
        make_user(owner, username=f"c{n:02d}", last_name=f"Clerk {n:02d}", role=clerk)
    rule = SodRule.objects.create(
        owner=owner,
        name="Invoices vs payments",
        left=[["invoices", "full"]],
        right=[["payments", "full"]],
    )
    proposal = Proposal(grants={invoicing.pk: {"payments": "full"}})
    with pytest.raises(sod.SodRefused) as refused:
        sod.check(owner, proposal)
    sod.forget_refusals()
    findings = refused.value.findings
    assert len(findings) == 10 and {f.rule for f in findings} == {rule}
    assert [f.others for f in findings] == [0] * 9 + [4]
    assert refused.value.messages[-1].startswith(
        "Clerk 09 and 4 others with the same access would hold both sides"
    )


# Query counts ------------------------------------------------------------------------------------


@pytest.fixture
def crowd(owner):
    """An owner with 50 rules, a few roles and people reached in several ways."""
    rng = random.Random(7)
    codes = [a.code for a in catalog.areas_for(catalog.Channel.APPLICATION)]
    groups = [
        make_role_group(owner, f"G{n}", {c: area(c).top for c in rng.sample(codes, 25)})
        for n in range(6)
    ]
    roles = [make_role(owner, f"R{n}", groups[n : n + 2]) for n in range(5)]
    for n in range(30):
        user = make_user(owner, username=f"p{n}", role=roles[n % 5])
        if n % 7 == 0:
            user.extra_role_groups.set([groups[-1]])
    pairs = set()
    while len(pairs) < 50:
        pairs.add(tuple(rng.sample(codes, 2)))
    SodRule.objects.bulk_create(
        [
            SodRule(
                owner=owner, name=f"Rule {n}", left=[[a, area(a).top]], right=[[b, area(b).top]]
            )
            for n, (a, b) in enumerate(sorted(pairs))
        ]
    )
    return groups, roles


@pytest.mark.parametrize("kind", ["matrix", "role", "user", "override", "nothing the rules read"])
def test_checking_a_change_against_50_rules_takes_one_query(
    kind, owner, crowd, django_assert_num_queries
):
    groups, roles = crowd
    user = get_user_model().objects.filter(owner=owner, role=roles[0]).first()
    code = next(c for c, _ in SodRule.objects.filter(owner=owner).first().left)
    proposal = {
        "matrix": Proposal(grants={groups[0].pk: {code: area(code).top}}),
        "role": Proposal(role_groups={roles[1].pk: {g.pk for g in groups}}),
        "user": Proposal(user_roles={user.pk: roles[2].pk}, user_groups={user.pk: {groups[3].pk}}),
        "override": Proposal(overrides={user.pk: {code: OverrideRule(code, area(code).top)}}),
        "nothing the rules read": Proposal(grants={groups[0].pk: {"api_users": "write"}}),
    }[kind]
    with django_assert_num_queries(1):  # the rules and the people, in one statement
        try:
            sod.check(owner, proposal)
        except sod.SodRefused:
            pass
    sod.forget_refusals()


def test_checking_against_no_rules_takes_one_query(owner, django_assert_num_queries):
    group = make_role_group(owner, "G", {"invoices": "read"})
    make_user(owner, role=make_role(owner, "R", [group]))
    with django_assert_num_queries(1):
        assert sod.check(owner, Proposal(grants={group.pk: {"invoices": "full"}})) == []


def test_the_report_takes_the_same_queries_whatever_the_number_of_people(
    owner, crowd, django_assert_num_queries
):
    with django_assert_num_queries(1):
        figures = sod.violation_figures(owner)
    assert figures
    with django_assert_num_queries(4):  # rules, figures, first violators, their rows
        sections = sod.report(owner, rows=3)
    assert len(sections) == 50
    _, roles = crowd
    for n in range(40):
        make_user(owner, username=f"more{n}", role=roles[n % 5])
    with django_assert_num_queries(4):
        assert sum(s.total for s in sod.report(owner, rows=3)) > sum(
            f.total for f in figures.values()
        )


def test_blocking_violations_of_a_page_take_one_query(owner, crowd, django_assert_num_queries):
    people = list(get_user_model().objects.filter(owner=owner).values_list("pk", flat=True))
    with django_assert_num_queries(1):
        found = sod.blocking_violations(owner, people)
    assert found
    assert all(isinstance(name, str) for names in found.values() for _, name in names)


def test_a_rule_of_another_owner_or_an_api_group_counts_for_nobody(owner, crowd):
    other = make_owner()
    SodRule.objects.create(
        owner=other, name="Elsewhere", left=[["invoices", "read"]], right=[["payments", "read"]]
    )
    figures = sod.violation_figures(owner)
    assert set(figures) <= set(SodRule.objects.filter(owner=owner).values_list("pk", flat=True))
    api = RoleGroup.objects.create(owner=owner, name="API only", kind="api")
    Grant.objects.create(role_group=api, area="api_users", level="write")
    assert sod.violation_figures(owner) == figures
