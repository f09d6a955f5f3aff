"""Separation of duties: rules against toxic combinations of rights, checked at every door.

A rule has two sides, each a set of (area, minimum level) joined by "any of" or "all of". A
person violates it when their effective access satisfies both sides. Every writer that can move
someone's access describes its change as an impact `Proposal` and calls `check` before writing:
a new violation of a *block* rule refuses the change (naming the rule and both sides); one of
an *exception* rule refuses it unless an approved, unexpired exception covers that person.
Identity providers are never refused outright: `withhold` finds what to leave out instead.
"""

from __future__ import annotations

import datetime
import functools
import json
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.services import diff
from portal.reasons import required_reason

from . import catalog, impact, permissions, sod_queries
from .choices import RoleGroupKind, SodEffect, SodJoin
from .impact import Impact, Proposal
from .models import SodException, SodRule

Side = list[tuple[str, str]]


# Rules in memory -------------------------------------------------------------------------------


def side_met(side: Iterable, join: str, levels: Mapping[str, str]) -> bool:
    """Say whether `levels` ({area: level}) satisfy one side of a rule."""
    pairs = [(area, level) for area, level in side if area in catalog.BY_CODE]
    if not pairs:
        return False
    held = (catalog.get(area).at_least(levels.get(area, catalog.NONE), lvl) for area, lvl in pairs)
    return all(held) if join == SodJoin.ALL else any(held)


def violates(rule: SodRule, levels: Mapping[str, str]) -> bool:
    """Say whether someone holding `levels` violates `rule`."""
    return side_met(rule.left, rule.left_join, levels) and side_met(
        rule.right, rule.right_join, levels
    )


def describe_side(side: Iterable, join: str) -> str:
    """Return a side as people read it: "Invoices (full) or Payments (full)"."""
    word = " and " if join == SodJoin.ALL else " or "

    def one(area: str, level: str) -> str:
        label = catalog.get(area).label if area in catalog.BY_CODE else area
        return f"{label} ({catalog.LEVEL_LABELS.get(level, level).lower()})"

    return word.join(one(area, level) for area, level in side)


@dataclass(frozen=True)
class Finding:
    """A person whom a proposed change would put in violation of a rule."""

    rule: SodRule
    user_id: int
    user_label: str
    excepted: bool = False
    # How many more people with the same access the change would put in the same place (a
    # change that reaches thousands names the first few and counts the rest).
    others: int = 0

    @property
    def blocks(self) -> bool:
        return not self.excepted

    def message(self) -> str:
        rule = self.rule
        what = "is blocked" if rule.effect == SodEffect.BLOCK else "needs an approved exception"
        who = self.user_label
        if self.others:
            who += (
                f" and {self.others:,} other{'s' if self.others != 1 else ''} with the same access"
            )
        return (
            f"{who} would hold both sides of “{rule.name}”: "
            f"{describe_side(rule.left, rule.left_join)} and "
            f"{describe_side(rule.right, rule.right_join)}. This {what}."
        )


class SodRefused(ValidationError):
    """A change refused by separation of duties; `findings` names each person and rule.

    The refusal is evidence too, but the writer's transaction rolls back with it: it is
    remembered and written once the request's transactions have ended (`flush_refusals`, run
    by the permission middleware; a command or task calls it itself).
    """

    def __init__(self, findings: list[Finding], *, owner=None, actor=None, actor_label=""):
        super().__init__([f.message() for f in findings], code="sod")
        self.findings = findings
        self.owner = owner
        self.actor = actor
        self.actor_label = actor_label


_refusals = threading.local()


def _remember(exc: SodRefused) -> None:
    pending = getattr(_refusals, "pending", None)
    if pending is None:
        pending = _refusals.pending = []
    pending.append(exc)


def refusal(findings: list[Finding], *, owner, actor=None, actor_label: str = "") -> SodRefused:
    """Return the refusal of a change, remembered so that its evidence is written."""
    refused = SodRefused(findings, owner=owner, actor=actor, actor_label=actor_label)
    _remember(refused)
    return refused


def forget_refusals() -> None:
    """Start a request with no refusal waiting to be recorded."""
    _refusals.pending = []


def flush_refusals() -> None:
    """Record the refusals of this request (or task) once its transactions have ended."""
    pending = getattr(_refusals, "pending", None) or []
    _refusals.pending = []
    connection = transaction.get_connection()
    for exc in pending:
        if not connection.needs_rollback:  # never inside the transaction that failed
            record_refusal(exc)


def record_refusal(exc: SodRefused) -> None:
    """Record a refused change; call it once the refused writer's transaction has ended."""
    if exc.owner is None or getattr(exc, "recorded", False):
        return
    exc.recorded = True
    with transaction.atomic():
        audit.record(
            AuditAction.SOD_BLOCKED,
            actor=exc.actor,
            actor_label=exc.actor_label or ("" if exc.actor else "System"),
            owner=exc.owner,
            details=" ".join(f.message() for f in exc.findings)[:2000],
            context={
                "rules": sorted({f.rule.name for f in exc.findings}),
                "users": sorted({f.user_id for f in exc.findings}),
                "others": sum(f.others for f in exc.findings),
            },
        )


# Checking a change -----------------------------------------------------------------------------


def _rules(owner) -> list[SodRule]:
    return list(SodRule.objects.filter(owner=owner))


def findings_for(owner, result: Impact, *, now=None, rules=None) -> list[Finding]:
    """Return the violations that the previewed change would newly create, one per person and
    rule; those covered by an exception in force are marked `excepted`."""
    rules = _rules(owner) if rules is None else rules
    if not rules or not result.users:
        return []
    now = now or timezone.now()
    found = []
    for user_impact in result.users:
        for rule in rules:
            if violates(rule, user_impact.levels_after) and not violates(
                rule, user_impact.levels_before
            ):
                found.append(Finding(rule, user_impact.user.pk, user_impact.user.label))
    if not found:
        return []
    excepted = set(
        SodException.objects.in_force(now)
        .filter(rule__in=[f.rule for f in found], user_id__in=[f.user_id for f in found])
        .values_list("rule_id", "user_id")
    )
    return [
        Finding(f.rule, f.user_id, f.user_label, excepted=(f.rule.pk, f.user_id) in excepted)
        if f.rule.effect == SodEffect.EXCEPTION
        else f
        for f in found
    ]


def check(owner, proposal: Proposal, *, actor=None, actor_label: str = "", now=None) -> list:
    """Refuse `proposal` when it would put anyone in violation of a rule; return the findings
    that let it through (violations an exception in force covers).

    Call it inside the writer's transaction, before writing. On PostgreSQL it costs one query
    whatever the number of rules and of users the change reaches (`new_findings`).
    """
    now = now or timezone.now()
    found = new_findings(owner, proposal, now=now)
    blocking = [f for f in found if f.blocks]
    if blocking:
        raise refusal(blocking, owner=owner, actor=actor, actor_label=actor_label)
    return found


@dataclass(frozen=True)
class _Compiled:
    """A rule ready to test against levels as ranks: each side as (area, minimum rank)."""

    rule: SodRule
    left: tuple[tuple[str, int], ...]
    left_all: bool
    right: tuple[tuple[str, int], ...]
    right_all: bool

    @staticmethod
    def met(side: tuple[tuple[str, int], ...], every: bool, ranks: Mapping[str, int]) -> bool:
        if not side:
            return False
        held = (ranks.get(area, 0) >= needed for area, needed in side)
        return all(held) if every else any(held)

    def violated(self, ranks: Mapping[str, int]) -> bool:
        return self.met(self.left, self.left_all, ranks) and self.met(
            self.right, self.right_all, ranks
        )


def _compiled_side(side) -> tuple[tuple[str, int], ...]:
    pairs = []
    for area, level in side:
        found = catalog.BY_CODE.get(area)
        if found is not None and found.is_level(level):
            pairs.append((area, found.rank(level)))
    return tuple(pairs)


@functools.lru_cache(maxsize=512)
def _compiled_rules(owner_id: int, text: str) -> tuple[_Compiled, ...]:
    """Return the rules whose rows `text` holds (JSON), compiled; keyed by that text, so that a
    changed rule is a new entry, never a stale one."""
    compiled = []
    for row in json.loads(text):
        rule = SodRule(
            id=row["id"],
            owner_id=owner_id,
            name=row["name"],
            description=row["description"],
            left=row["left"],
            left_join=row["left_join"],
            right=row["right"],
            right_join=row["right_join"],
            effect=row["effect"],
        )
        compiled.append(
            _Compiled(
                rule,
                _compiled_side(rule.left),
                rule.left_join == SodJoin.ALL,
                _compiled_side(rule.right),
                rule.right_join == SodJoin.ALL,
            )
        )
    return tuple(compiled)


def new_findings(owner, proposal: Proposal, *, now, rules=None) -> list[Finding]:
    """Return the violations of the owner's rules that `proposal` would newly create.

    On PostgreSQL, one query (`sod_queries.change_inputs`) reads the rules and the users the
    change reaches, grouped by everything their levels depend on, restricted to the areas the
    rules name; each group is resolved before and after in memory, once, and its first people
    are named. Elsewhere, through the impact preview (`rules` spares loading them again).
    """
    if proposal.is_empty():
        return []
    if not sod_queries.is_supported():
        rules = _rules(owner) if rules is None else rules
        if not rules:
            return []
        return findings_for(owner, impact.preview(owner, proposal, now=now), now=now, rules=rules)
    groups_proposed = set(proposal.grants)
    for groups in (*proposal.role_groups.values(), *proposal.user_groups.values()):
        groups_proposed |= set(groups)
    inputs = sod_queries.change_inputs(
        owner,
        cells=[(g, area) for g, cells in proposal.grants.items() if g > 0 for area in cells],
        replaced={g for g in proposal.replace_grants if g > 0},
        recomposed_roles=set(proposal.role_groups),
        named_users=set(proposal.user_roles) | set(proposal.user_groups),
        override_cells=[
            (u, area) for u, rules_of in proposal.overrides.items() for area in rules_of
        ],
        roles_after={role for role in proposal.user_roles.values() if role},
        groups_proposed={g for g in groups_proposed if g > 0},
        now=now,
    )
    compiled = _compiled_rules(owner.pk, inputs.rules_text)
    if not compiled or not inputs.alike:
        return []
    areas = {area for c in compiled for area, _ in (*c.left, *c.right)}
    cells_before = inputs.cells
    cells_after = {group_id: dict(cells) for group_id, cells in cells_before.items()}
    for group_id, cells in proposal.grants.items():
        new = proposal.new_groups.get(group_id)
        if new is not None and new[1] != RoleGroupKind.APPLICATION:
            continue
        merged = {} if group_id in proposal.replace_grants else dict(cells_before.get(group_id, {}))
        merged.update({area: level for area, level in cells.items() if area in areas})
        cells_after[group_id] = {a: lvl for a, lvl in merged.items() if lvl != catalog.NONE}
    roles_before = inputs.groups_of_role
    roles_after = {**roles_before, **{r: set(g) for r, g in proposal.role_groups.items()}}
    ranks_before, ranks_after = _cell_ranks(cells_before), _cell_ranks(cells_after)

    found: list[Finding] = []
    for alike in inputs.alike:
        role_after, extras_after = alike.role_id, alike.extras
        overrides_after = dict(alike.overrides)
        if alike.named is not None:
            role_after = proposal.user_roles.get(alike.named, alike.role_id)
            extras_after = frozenset(proposal.user_groups.get(alike.named, alike.extras))
            for area, rule in (proposal.overrides.get(alike.named) or {}).items():
                if area not in areas:
                    continue
                if rule is None or (rule.expires_at is not None and rule.expires_at <= now):
                    overrides_after.pop(area, None)
                else:
                    overrides_after[area] = rule.level
        before = _ranks(
            roles_before.get(alike.role_id, set()) | alike.extras | alike.elevations,
            ranks_before,
            alike.overrides,
            alike,
            areas,
        )
        after = _ranks(
            roles_after.get(role_after, set()) | extras_after | alike.elevations,
            ranks_after,
            overrides_after,
            alike,
            areas,
        )
        if after == before:
            continue
        people = list(zip(alike.ids, alike.labels, strict=True))
        for c in compiled:
            if not c.violated(after) or c.violated(before):
                continue
            excepted = c.rule.effect == SodEffect.EXCEPTION and c.rule.pk in alike.excepted
            for n, (user_id, label) in enumerate(people):
                others = alike.count - len(people) if n == len(people) - 1 else 0
                found.append(Finding(c.rule, user_id, label, excepted=excepted, others=others))
    return found


def _cell_ranks(cells: Mapping[int, Mapping[str, str]]) -> dict[int, dict[str, int]]:
    """Return each group's cells as {area: rank}, leaving out levels the catalog lacks."""
    ranked: dict[int, dict[str, int]] = {}
    for group_id, levels in cells.items():
        ranked[group_id] = {}
        for code, level in levels.items():
            area = catalog.BY_CODE.get(code)
            if area is not None and area.is_level(level):
                ranked[group_id][code] = area.rank(level)
    return ranked


def _ranks(groups, cell_ranks, overrides, alike, areas) -> dict[str, int]:
    """Return the ranks of the levels on `areas` of someone reaching `groups` and holding
    `overrides`, as `roles.resolver` decides them: the override, else the best group level
    (every top level for a platform administrator), then the data-protection gate."""
    if alike.superuser:
        ranks = {code: len(catalog.BY_CODE[code].levels) - 1 for code in areas}
    else:
        ranks = dict.fromkeys(areas, 0)
        for group_id in groups:
            for code, rank in cell_ranks.get(group_id, {}).items():
                if rank > ranks.get(code, 0):
                    ranks[code] = rank
    for code, level in overrides.items():
        area = catalog.BY_CODE.get(code)
        if code in ranks and area is not None and area.is_level(level):
            ranks[code] = area.rank(level)
    if not alike.dp_ok:
        for code in ranks:
            if catalog.BY_CODE[code].is_data_protection:
                ranks[code] = 0
    return ranks


def withhold(owner, user_id: int, role_id, groups: Iterable[int], *, now=None):
    """Return (role id, group ids, withheld) for an identity provider's proposed access: every
    group and the role, less what would create a blocking violation; `withheld` lists each
    part left out with the rule it would break.

    Nothing is half-applied: the role is kept or left as it was, each group is kept or left out.
    """
    now = now or timezone.now()
    groups = list(groups)
    rules = None
    if not sod_queries.is_supported():
        rules = _rules(owner)
        if not rules:
            return role_id, groups, []
    withheld: list[tuple[str, str]] = []

    def blocked(proposal: Proposal) -> list[Finding]:
        return [f for f in new_findings(owner, proposal, now=now, rules=rules) if f.blocks]

    whole = Proposal(user_roles={user_id: role_id}, user_groups={user_id: set(groups)})
    if not blocked(whole):
        return role_id, groups, []
    kept_role = role_id
    refused = blocked(Proposal(user_roles={user_id: role_id}, user_groups={user_id: set()}))
    if refused:
        kept_role = _UNCHANGED
        withheld += [("role", f.rule.name) for f in refused]
    kept: list[int] = []
    for group in groups:
        trial = Proposal(user_groups={user_id: {*kept, group}})
        if kept_role is not _UNCHANGED:
            trial.user_roles = {user_id: kept_role}
        refused = blocked(trial)
        if refused:
            withheld += [(f"group:{group}", f.rule.name) for f in refused]
        else:
            kept.append(group)
    return kept_role, kept, withheld


_UNCHANGED = object()
UNCHANGED = _UNCHANGED


# Rules -----------------------------------------------------------------------------------------


def _clean_side(side, label: str) -> Side:
    pairs: Side = []
    errors = []
    for item in side or ():
        try:
            area, level = item
        except (TypeError, ValueError):
            errors.append(f"{label}: each entry names an area and a level.")
            continue
        try:
            found = catalog.validate(str(area), str(level))
        except ValueError as exc:
            errors.append(f"{label}: {exc}")
            continue
        if found.channel != catalog.Channel.APPLICATION:
            errors.append(f"{label}: {found.label} is an API area; rules read application areas.")
            continue
        if level == catalog.NONE:
            errors.append(f"{label}: {found.label} at no access is not a right.")
            continue
        pairs.append((found.code, str(level)))
    if not pairs and not errors:
        errors.append(f"{label}: name at least one area and level.")
    if errors:
        raise ValidationError({label.lower().replace(" ", "_"): errors})
    return sorted(set(pairs))


def _validated(data: Mapping) -> dict:
    errors: dict[str, list[str]] = {}
    name = " ".join(str(data.get("name", "")).split())
    if not name:
        errors["name"] = ["Give the rule a name."]
    elif len(name) > 120:
        errors["name"] = ["Keep the name under 120 characters."]
    sides = {}
    for key, label in (("left", "First side"), ("right", "Second side")):
        try:
            sides[key] = _clean_side(data.get(key), label)
        except ValidationError as exc:
            errors[key] = exc.messages
    if "left" in sides and "right" in sides:
        overlap = {a for a, _ in sides["left"]} & {a for a, _ in sides["right"]}
        if overlap:
            names = ", ".join(sorted(catalog.get(a).label for a in overlap))
            errors["right"] = [f"The two sides overlap ({names}): a rule needs two duties."]
    joins = {}
    for key in ("left_join", "right_join"):
        joins[key] = data.get(key) or SodJoin.ANY
        if joins[key] not in SodJoin.values:
            errors[key] = ["Choose any of, or all of."]
    effect = data.get("effect") or SodEffect.BLOCK
    if effect not in SodEffect.values:
        errors["effect"] = ["Choose block or exception."]
    if errors:
        raise ValidationError(errors)
    return {
        "name": name,
        "description": str(data.get("description", "")).strip()[:2000],
        "left": [list(p) for p in sides["left"]],
        "right": [list(p) for p in sides["right"]],
        **joins,
        "effect": effect,
    }


def _state(rule: SodRule) -> dict:
    return {
        "name": rule.name,
        "description": rule.description,
        "left": describe_side(rule.left, rule.left_join),
        "right": describe_side(rule.right, rule.right_join),
        "effect": rule.effect,
    }


def _check_can_manage(actor) -> None:
    held = permissions.for_user(actor)
    if not actor.is_superuser and not held.has(catalog.USER_GROUPS, catalog.FULL):
        raise PermissionDenied("Managing separation-of-duties rules needs full on User Groups.")


def save_rule(
    rule: SodRule | None,
    data: Mapping,
    *,
    actor,
    reason: str,
    expected_row_version: int | None = None,
) -> SodRule:
    """Create a rule (`rule` None) or change one, after checking both sides and the name."""
    _check_can_manage(actor)
    values = _validated(data)
    with transaction.atomic():
        if rule is None:
            rule = SodRule(owner_id=actor.owner_id)
            before: dict = {}
        else:
            rule = SodRule.objects.select_for_update().get(pk=rule.pk, owner_id=actor.owner_id)
            if expected_row_version is not None and rule.row_version != expected_row_version:
                raise ValidationError("Someone else changed this rule; reload it and try again.")
            before = _state(rule)
            rule.row_version += 1
        for name, value in values.items():
            setattr(rule, name, value)
        rule.updated_at = timezone.now()
        try:
            with transaction.atomic():
                rule.save()
        except IntegrityError as exc:
            raise ValidationError({"name": "Another rule has this name."}) from exc
        changes = diff(before, _state(rule))
        audit.record(
            AuditAction.SOD_RULE_CHANGED if before else AuditAction.SOD_RULE_CREATED,
            actor=actor,
            target=rule,
            changes=changes,
            reason=reason,
        )
    return rule


def delete_rule(rule: SodRule, *, actor, reason: str) -> None:
    """Delete a rule (its exceptions go with it)."""
    _check_can_manage(actor)
    if rule.owner_id != actor.owner_id and not actor.is_superuser:
        raise PermissionDenied("Not your organisation's rule.")
    if not (reason or "").strip():
        raise ValidationError({"reason": "Say why this rule is deleted."})
    with transaction.atomic():
        audit.record(
            AuditAction.SOD_RULE_DELETED,
            actor=actor,
            target=rule,
            changes=diff(_state(rule), {}),
            reason=reason,
        )
        rule.delete()


# Starter rules for billing: the combinations auditors ask about first.
STARTER_RULES = [
    (
        "Bank details vs direct-debit runs",
        "Whoever edits direct debits should not also release direct-debit runs.",
        [("direct_debits", catalog.FULL)],
        [("direct_debit_runs", catalog.EXECUTE)],
    ),
    (
        "Card payments vs card runs",
        "Whoever records card payments should not also release payment card runs.",
        [("payments", catalog.FULL)],
        [("payment_card_runs", catalog.EXECUTE)],
    ),
    (
        "Invoicing vs recording payments",
        "Whoever raises invoices should not also record payments.",
        [("invoices", catalog.FULL)],
        [("payments", catalog.FULL)],
    ),
    (
        "Users vs what user groups grant",
        "Whoever manages users should not also define what user groups grant.",
        [(catalog.USERS, catalog.FULL)],
        [(catalog.USER_GROUPS, catalog.FULL)],
    ),
    (
        "Tariffs vs billing runs",
        "Whoever sets tariffs should not also run billing.",
        [("tariffs", catalog.FULL)],
        [("billing_billing_run", catalog.EXECUTE)],
    ),
]


def install_starter_rules(*, actor, reason: str = "Starter rules for billing") -> list[SodRule]:
    """Create the starter rules an owner does not have yet (by name); return those created."""
    existing = {
        r.lower()
        for r in SodRule.objects.filter(owner_id=actor.owner_id).values_list("name", flat=True)
    }
    created = []
    for name, description, left, right in STARTER_RULES:
        if name.lower() in existing:
            continue
        data = {"name": name, "description": description, "left": left, "right": right}
        created.append(save_rule(None, data, actor=actor, reason=reason))
    return created


# Exceptions ------------------------------------------------------------------------------------


def grant_exception(
    rule: SodRule,
    user,
    *,
    actor,
    requested_by,
    reason: str,
    expires_at: datetime.datetime,
    now: datetime.datetime | None = None,
) -> SodException:
    """Approve an exception: `user` may hold both sides of `rule` until `expires_at`.

    The approver is someone other than the person asking, holding Approve on Access Requests.
    """
    now = now or timezone.now()
    if rule.effect != SodEffect.EXCEPTION:
        raise ValidationError(f"“{rule.name}” blocks; it takes no exceptions.")
    if rule.owner_id != user.owner_id or (
        actor.owner_id != rule.owner_id and not actor.is_superuser
    ):
        raise PermissionDenied("Not your organisation's rule.")
    if requested_by is not None and actor.pk == requested_by.pk:
        raise PermissionDenied("Someone other than the person asking approves an exception.")
    if actor.pk == user.pk:
        raise PermissionDenied("Nobody approves an exception for themselves.")
    held = permissions.for_user(actor)
    if not actor.is_superuser and not held.has(catalog.ACCESS_REQUESTS, catalog.APPROVE):
        raise PermissionDenied("Approving exceptions needs Approve on Access Requests.")
    reason = (reason or "").strip()
    errors = {}
    if not reason:
        errors["reason"] = "Say why the exception is needed."
    if expires_at is None or expires_at <= now:
        errors["expires_at"] = "Choose an expiry in the future."
    elif expires_at > now + datetime.timedelta(days=365):
        errors["expires_at"] = "An exception lasts a year at most."
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        exception = SodException.objects.create(
            owner_id=rule.owner_id,
            rule=rule,
            user=user,
            reason=reason[:500],
            requested_by=requested_by,
            approved_by=actor,
            expires_at=expires_at,
            created_at=now,
        )
        audit.record(
            AuditAction.SOD_EXCEPTION_GRANTED,
            actor=actor,
            target=user,
            reason=reason,
            context={"rule": rule.name, "expires_at": expires_at.isoformat()},
        )
    return exception


def revoke_exception(exception: SodException, *, actor, reason: str) -> bool:
    """End an exception now, with a reason; return whether it was still in force.

    Like granting one, ending it needs Approve on Access Requests.
    """
    if exception.owner_id != actor.owner_id and not actor.is_superuser:
        raise PermissionDenied("Not your organisation's exception.")
    held = permissions.for_user(actor)
    if not actor.is_superuser and not held.has(catalog.ACCESS_REQUESTS, catalog.APPROVE):
        raise PermissionDenied("Ending exceptions needs Approve on Access Requests.")
    reason = required_reason(reason, "Say why the exception ends now.")
    with transaction.atomic():
        ended = (
            SodException.objects.in_force()
            .filter(pk=exception.pk)
            .update(revoked_at=timezone.now())
        )
        if not ended:
            return False  # already ended or expired: nothing to record
        audit.record(
            AuditAction.SOD_EXCEPTION_REVOKED,
            actor=actor,
            target=exception.user,
            reason=reason,
            context={"rule": exception.rule.name},
        )
    return True


# The report ------------------------------------------------------------------------------------


def violators(rule: SodRule, *, now=None):
    """Return the users of the rule's owner who hold both sides now, computed in SQL (a
    queryset: filter, order and slice it)."""
    from django.contrib.auth import get_user_model
    from django.db.models.expressions import RawSQL

    now = now or timezone.now()
    users = get_user_model().objects.filter(owner_id=rule.owner_id)
    if not sod_queries.is_supported():
        return _violators_portable(rule, now=now)
    sql, params = sod_queries.violator_ids_sql(rule.owner, rule.pk, now=now)
    return users.filter(pk__in=RawSQL(sql, params))  # noqa: S611 (parameters only)


def _violators_portable(rule: SodRule, *, now):
    """Return `violators` from "who has access", one query per side's pair (any database)."""
    from django.contrib.auth import get_user_model

    from .reports import who_has_access

    def side(pairs, join):
        sets = [who_has_access(rule.owner, a, lvl, now=now).values("pk") for a, lvl in pairs]
        if not sets:
            return Q(pk__in=[])
        if join == SodJoin.ALL:
            condition = Q()
            for users in sets:
                condition &= Q(pk__in=users)
            return condition
        condition = Q(pk__in=sets[0])
        for users in sets[1:]:
            condition |= Q(pk__in=users)
        return condition

    users = get_user_model().objects.filter(owner=rule.owner)
    return users.filter(side(rule.left, rule.left_join)).filter(side(rule.right, rule.right_join))


Figures = sod_queries.Figures


def violation_figures(owner, *, now=None, rules=None) -> dict[int, Figures]:
    """Return {rule id: Figures (people violating it now, those an exception covers)} for every
    rule of the owner, in one query on PostgreSQL."""
    now = now or timezone.now()
    if sod_queries.is_supported():
        found = sod_queries.figures(owner, now=now)
    else:
        found = {}
        for rule in _rules(owner) if rules is None else rules:
            people = _violators_portable(rule, now=now)
            covered = SodException.objects.in_force(now).filter(rule=rule, user__in=people)
            found[rule.pk] = Figures(people.count(), covered.values("user_id").distinct().count())
    return {rule_id: figures for rule_id, figures in found.items() if figures.total}


@dataclass
class ReportSection:
    """One rule of the report: how many people violate it, how many an exception covers, and
    the first of them by name."""

    rule: SodRule
    total: int
    covered: int
    users: list

    @property
    def uncovered(self) -> int:
        return self.total - self.covered


def report(owner, *, now=None, rows: int = 100) -> list[ReportSection]:
    """Return the violations report of the owner: every rule with its figures and its first
    `rows` violators by name (three queries on PostgreSQL, whatever the number of users)."""
    from django.contrib.auth import get_user_model

    now = now or timezone.now()
    rules = list(SodRule.objects.filter(owner=owner))
    if not rules:
        return []
    found = violation_figures(owner, now=now, rules=rules)
    if sod_queries.is_supported():
        totals = {rule_id: figures.total for rule_id, figures in found.items()}
        first = (
            sod_queries.first_violators(owner, now=now, limit=rows, totals=totals)
            if found and rows
            else {}
        )
    else:
        first = {
            rule.pk: list(
                _violators_portable(rule, now=now)
                .order_by("last_name", "first_name", "pk")
                .values_list("pk", flat=True)[:rows]
            )
            for rule in rules
            if rule.pk in found
        }
    wanted = {user_id for ids in first.values() for user_id in ids}
    users = {}
    if wanted:
        users = get_user_model().objects.select_related("role").in_bulk(wanted)
    sections = []
    for rule in rules:
        figures = found.get(rule.pk, Figures())
        shown = [users[user_id] for user_id in first.get(rule.pk, []) if user_id in users]
        sections.append(ReportSection(rule, figures.total, figures.covered, shown))
    return sections


def blocking_violations(owner, user_ids, *, now=None) -> dict[int, list[tuple[int, str]]]:
    """Return {user id: [(rule id, rule name), ...]} for the blocking rules a page of people
    violate now, in one query on PostgreSQL (it reads the rules itself)."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    now = now or timezone.now()
    if sod_queries.is_supported():
        return sod_queries.rules_violated_by(owner, user_ids, now=now, effect=SodEffect.BLOCK)
    result: dict[int, list[tuple[int, str]]] = {}
    for rule in SodRule.objects.filter(owner=owner, effect=SodEffect.BLOCK):
        people = _violators_portable(rule, now=now).filter(pk__in=user_ids)
        for user_id in people.values_list("pk", flat=True):
            result.setdefault(user_id, []).append((rule.pk, rule.name))
    return result
