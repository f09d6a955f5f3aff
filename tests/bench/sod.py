"""Separation of duties at the bench's size (issue 19's goals): one role-group matrix change
checked against 50 rules (`sod.check`: queries, p50 and p95), and the violations report for
the whole owner (`sod.report`, what its screen shows: every rule's figures and first 100
people; queries and p95).

Called by `tests.bench.__main__` for the biggest owner; the rules are seeded once and kept.
"""

from __future__ import annotations

import random
import statistics
import time

from django.db import connection

from accounts.models import User
from roles import catalog, sod
from roles.impact import Proposal
from roles.models import RoleGroup, SodRule

from .counting import QueryTimer

RULES = 50
# The report evaluates 50 rules over every user: fewer runs than a page, the same percentiles.
REPORT_RUNS = 9
SLOW_REPORT_SECONDS = 10


def seed_rules(owner) -> list[SodRule]:
    """Create 50 blocking rules over distinct pairs of application areas, each side one area at
    its top level, unless the owner has them already."""
    rules = list(SodRule.objects.filter(owner=owner))
    if len(rules) >= RULES:
        return rules[:RULES]
    rng = random.Random(owner.pk)
    areas = [a for a in catalog.areas_for(catalog.Channel.APPLICATION) if not a.is_data_protection]
    taken = {r.name for r in rules}
    pairs = set()
    while len(pairs) < RULES:
        left, right = rng.sample(areas, 2)
        pairs.add((left, right))
    SodRule.objects.bulk_create(
        [
            SodRule(
                owner=owner,
                name=f"Bench rule {n:02d}",
                left=[[left.code, left.top]],
                right=[[right.code, right.top]],
            )
            for n, (left, right) in enumerate(sorted(pairs, key=lambda p: (p[0].code, p[1].code)))
            if f"Bench rule {n:02d}" not in taken
        ]
    )
    return list(SodRule.objects.filter(owner=owner))[:RULES]


def _pct(values: list[float], q: int) -> float:
    values = sorted(values)
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def _change(owner, rules) -> tuple[RoleGroup, Proposal]:
    """Return the role group the most users reach through their role, and a raise of one of its
    cells (an area it holds below the top), as the matrix editor would save it: an area that a
    rule names, so that the check has everyone the group reaches to resolve."""
    group = (
        RoleGroup.objects.filter(owner=owner, roles__isnull=False)
        .order_by("pk")
        .prefetch_related("grants")
        .first()
    )
    named = {area for rule in rules for area, _ in (*rule.left, *rule.right)}
    raisable = [
        catalog.BY_CODE[grant.area]
        for grant in sorted(group.grants.all(), key=lambda g: g.area)
        if grant.area in catalog.BY_CODE
        and catalog.BY_CODE[grant.area].channel == catalog.Channel.APPLICATION
        and grant.level != catalog.BY_CODE[grant.area].top
    ]
    if raisable:
        area = min(raisable, key=lambda a: (a.code not in named, a.code))
    else:
        area = catalog.areas_for(catalog.Channel.APPLICATION)[0]
    return group, Proposal(grants={group.pk: {area.code: area.top}})


def _reached(owner, group) -> int:
    """Return how many people reach `group` through their role (whom the check resolves)."""
    return User.objects.filter(owner=owner, role__role_groups=group).count()


def measure(owner, *, repeat: int) -> dict:
    """Return the figures of the SoD check of one change and of the whole-owner report."""
    rules = seed_rules(owner)
    group, proposal = _change(owner, rules)
    users = User.objects.filter(owner=owner).count()
    reached = _reached(owner, group)
    change = ", ".join(f"{area} → {level}" for area, level in proposal.grants[group.pk].items())

    def check() -> bool:
        try:
            sod.check(owner, proposal)
        except sod.SodRefused:
            return True
        finally:
            sod.forget_refusals()  # nothing is recorded: the bench writes no evidence
        return False

    refused = check()  # warm
    counter = QueryTimer()
    with connection.execute_wrapper(counter):
        check()
    times = []
    for _ in range(max(repeat, 3)):
        started = time.perf_counter()
        check()
        times.append((time.perf_counter() - started) * 1000)

    def report() -> int:
        # What the report screen shows: every rule's figures and its first 100 people.
        return sum(section.total for section in sod.report(owner, rows=100))

    started = time.perf_counter()
    violations = report()  # warm
    report_counter = QueryTimer()
    with connection.execute_wrapper(report_counter):
        report()
    runs = min(max(repeat, 3), REPORT_RUNS)
    if time.perf_counter() - started > SLOW_REPORT_SECONDS:
        runs = 3  # a slow report still gets a p95 of its own, without holding the bench up
    report_times = []
    for _ in range(runs):
        started = time.perf_counter()
        report()
        report_times.append((time.perf_counter() - started) * 1000)
    return {
        "rules": len(rules),
        "users": users,
        "change": f"{group.name}: {change}",
        "check_reached": reached,
        "check_refused": refused,
        "check_queries": counter.count,
        "check_p50_ms": round(statistics.median(times), 2),
        "check_p95_ms": round(_pct(times, 95), 2),
        "report_violations": violations,
        "report_queries": report_counter.count,
        "report_p50_ms": round(statistics.median(report_times), 1),
        "report_p95_ms": round(_pct(report_times, 95), 1),
        "report_runs": len(report_times),
    }
