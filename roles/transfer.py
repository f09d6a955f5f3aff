"""The role model as a document: export an owner's role groups and roles, parse and plan an
import (with its impact on users), and apply it in one audited transaction."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.choices import AuditAction

from . import catalog, impact, sod
from .choices import RoleGroupKind
from .guards import check_can_grant, check_keeps_an_administrator
from .impact import Impact, Proposal
from .models import Grant, Role, RoleGroup
from .services import check_cells
from .versions import bump_owner

EXPORT_FORMAT = "billing-access-role-model"


def export_role_model(owner) -> dict:
    """Return the owner's role groups and roles as a JSON-ready document."""
    groups = RoleGroup.objects.filter(owner=owner).prefetch_related("grants").order_by("name")
    roles = Role.objects.filter(owner=owner).prefetch_related("role_groups").order_by("name")
    return {
        "format": EXPORT_FORMAT,
        "catalog_version": catalog.CATALOG_VERSION,
        "exported_at": timezone.now().isoformat(),
        "owner": owner.name,
        "role_groups": [
            {
                "name": g.name,
                "kind": g.kind,
                "description": g.description,
                "grants": {x.area: x.level for x in sorted(g.grants.all(), key=lambda x: x.area)},
            }
            for g in groups
        ],
        "roles": [
            {
                "name": r.name,
                "description": r.description,
                "role_groups": sorted(g.name for g in r.role_groups.all()),
            }
            for r in roles
        ],
    }


@dataclass
class ImportPlan:
    """What importing a role model would do, and its impact on users (nothing written yet)."""

    model: dict
    new_groups: list[str] = field(default_factory=list)
    changed_groups: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    new_roles: list[str] = field(default_factory=list)
    changed_roles: dict[str, list[list[str]]] = field(default_factory=dict)
    impact: Impact | None = None
    epoch: int = 0

    @property
    def is_empty(self) -> bool:
        return not (self.new_groups or self.changed_groups or self.new_roles or self.changed_roles)


def parse_role_model(text: str) -> dict:
    """Return a validated role model document from JSON text (ValidationError naming each fault)."""
    try:
        data = json.loads(text)
    except (TypeError, ValueError) as exc:
        raise ValidationError("This is not a JSON document: " + str(exc)) from exc
    if not isinstance(data, dict) or data.get("format") != EXPORT_FORMAT:
        raise ValidationError("This file is not a role model exported by Billing Access.")
    if data.get("catalog_version") != catalog.CATALOG_VERSION:
        raise ValidationError(
            f"This file was made with catalog version {data.get('catalog_version')!r}; this "
            f"portal uses version {catalog.CATALOG_VERSION}. Export it again from a portal of "
            "the same version."
        )
    groups, roles = data.get("role_groups"), data.get("roles")
    if not isinstance(groups, list) or not isinstance(roles, list):
        raise ValidationError("The file needs the lists “role_groups” and “roles”.")
    problems: list[str] = []
    names: set[str] = set()
    clean_groups = []
    for n, g in enumerate(groups, 1):
        if not isinstance(g, dict) or not isinstance(g.get("name"), str) or not g["name"].strip():
            problems.append(f"Role group {n} has no name.")
            continue
        name = g["name"].strip()[:120]
        kind = g.get("kind", RoleGroupKind.APPLICATION)
        grants = g.get("grants", {})
        if kind not in RoleGroupKind.values:
            problems.append(f"Role group {name}: unknown kind {kind!r}.")
            continue
        if not isinstance(grants, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in grants.items()
        ):
            problems.append(f"Role group {name}: grants must map area codes to levels.")
            continue
        try:
            check_cells(kind, grants)
        except ValidationError as exc:
            problems.extend(f"Role group {name}: {m}" for m in exc.messages)
            continue
        if name.lower() in names:
            problems.append(f"Role group {name} appears twice.")
            continue
        names.add(name.lower())
        clean_groups.append(
            {
                "name": name,
                "kind": kind,
                "description": str(g.get("description", ""))[:2000],
                "grants": {a: lvl for a, lvl in grants.items() if lvl != catalog.NONE},
            }
        )
    role_names: set[str] = set()
    clean_roles = []
    for n, r in enumerate(roles, 1):
        if not isinstance(r, dict) or not isinstance(r.get("name"), str) or not r["name"].strip():
            problems.append(f"Role {n} has no name.")
            continue
        name = r["name"].strip()[:120]
        members = r.get("role_groups", [])
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            problems.append(f"Role {name}: role_groups must be a list of group names.")
            continue
        if name.lower() in role_names:
            problems.append(f"Role {name} appears twice.")
            continue
        role_names.add(name.lower())
        clean_roles.append(
            {
                "name": name,
                "description": str(r.get("description", ""))[:2000],
                "role_groups": members,
            }
        )
    if problems:
        raise ValidationError(problems)
    return {
        "format": EXPORT_FORMAT,
        "catalog_version": catalog.CATALOG_VERSION,
        "role_groups": clean_groups,
        "roles": clean_roles,
    }


def plan_import(owner, model: dict, *, now=None) -> ImportPlan:
    """Return what importing `model` would create and change, with its impact preview.

    Groups and roles are matched by name (case-insensitive): a matched group's grants and a
    matched role's groups are replaced; others are created; nothing absent from the file is
    deleted. Role names must name groups of the file or of the owner.
    """
    plan = ImportPlan(model=model)
    plan.epoch = type(owner).objects.filter(pk=owner.pk).values_list("authz_epoch", flat=True)[0]
    existing_groups = {
        g.name.lower(): g for g in RoleGroup.objects.filter(owner=owner).prefetch_related("grants")
    }
    existing_roles = {
        r.name.lower(): r for r in Role.objects.filter(owner=owner).prefetch_related("role_groups")
    }
    proposal = Proposal()
    ids: dict[str, int] = {}
    temp = -1
    for g in model["role_groups"]:
        current = existing_groups.get(g["name"].lower())
        if current is None:
            plan.new_groups.append(g["name"])
            ids[g["name"].lower()] = temp
            proposal.new_groups[temp] = (g["name"], g["kind"])
            proposal.grants[temp] = dict(g["grants"])
            proposal.replace_grants.add(temp)
            temp -= 1
            continue
        if current.kind != g["kind"]:
            raise ValidationError(
                f"Role group {current.name} is of kind {current.kind} here and {g['kind']} in "
                "the file; rename one of them."
            )
        ids[g["name"].lower()] = current.pk
        before = {x.area: x.level for x in current.grants.all()}
        cells = {
            a: [before.get(a, catalog.NONE), g["grants"].get(a, catalog.NONE)]
            for a in sorted(set(before) | set(g["grants"]))
            if before.get(a, catalog.NONE) != g["grants"].get(a, catalog.NONE)
        }
        if cells:
            plan.changed_groups[current.name] = cells
            proposal.grants[current.pk] = dict(g["grants"])
            proposal.replace_grants.add(current.pk)
    for name, g in existing_groups.items():
        ids.setdefault(name, g.pk)
    missing = sorted({m for r in model["roles"] for m in r["role_groups"] if m.lower() not in ids})
    if missing:
        raise ValidationError(
            "Roles of the file name role groups that exist neither in the file nor here: "
            + ", ".join(missing)
            + "."
        )
    for r in model["roles"]:
        wanted = {ids[m.lower()] for m in r["role_groups"]}
        current = existing_roles.get(r["name"].lower())
        if current is None:
            plan.new_roles.append(r["name"])
            continue
        before_ids = {g.pk for g in current.role_groups.all()}
        if before_ids != wanted:
            names_by_id = {v: k for k, v in ids.items()}
            plan.changed_roles[current.name] = [
                sorted(g.name for g in current.role_groups.all()),
                sorted(
                    next(
                        (x["name"] for x in model["role_groups"] if x["name"].lower() == nm),
                        existing_groups[nm].name if nm in existing_groups else nm,
                    )
                    for nm in (names_by_id[i] for i in wanted)
                ),
            ]
            proposal.role_groups[current.pk] = wanted
    plan.impact = impact.preview(owner, proposal, now=now)
    return plan


def import_role_model(
    model: dict, *, actor, reason: str, expected_epoch: int | None = None
) -> ImportPlan:
    """Create and update role groups and roles from a parsed role model, in one transaction.

    `expected_epoch` is the owner's `authz_epoch` when the preview was shown: if access changed
    since, the import is refused so that nobody imports against a preview that no longer holds.
    """
    owner = actor.owner
    with transaction.atomic():
        locked_owner = type(owner).objects.select_for_update().get(pk=owner.pk)
        if expected_epoch is not None and int(expected_epoch) != locked_owner.authz_epoch:
            raise ValidationError(
                "Roles or role groups changed since the preview was shown. Upload the file "
                "again to see the current impact."
            )
        plan = plan_import(owner, model)
        if plan.impact is not None:
            blocking = [f for f in sod.findings_for(owner, plan.impact) if f.blocks]
            if blocking:
                raise sod.refusal(blocking, owner=owner, actor=actor)
        by_name = {g.name.lower(): g for g in RoleGroup.objects.filter(owner=owner)}
        raised: dict[str, str] = {}
        for g in model["role_groups"]:
            current = by_name.get(g["name"].lower())
            before = current.levels() if current else {}
            for code, level in g["grants"].items():
                area = catalog.get(code)
                above_before = area.rank(level) > area.rank(before.get(code, catalog.NONE))
                if above_before and area.rank(level) > area.rank(raised.get(code, catalog.NONE)):
                    raised[code] = level
        check_can_grant(actor, raised)
        for g in model["role_groups"]:
            current = by_name.get(g["name"].lower())
            if current is None:
                current = RoleGroup.objects.create(
                    owner=owner, name=g["name"], kind=g["kind"], description=g["description"]
                )
                by_name[g["name"].lower()] = current
            elif current.name in plan.changed_groups:
                current.grants.all().delete()
                current.row_version += 1
                current.updated_at = timezone.now()
                current.save(update_fields=["row_version", "updated_at"])
            else:
                continue
            Grant.objects.bulk_create(
                [Grant(role_group=current, area=a, level=lvl) for a, lvl in g["grants"].items()]
            )
        roles = {r.name.lower(): r for r in Role.objects.filter(owner=owner)}
        for r in model["roles"]:
            groups = [by_name[m.lower()] for m in r["role_groups"]]
            role = roles.get(r["name"].lower())
            if role is None:
                role = Role.objects.create(
                    owner=owner, name=r["name"], description=r["description"]
                )
            elif role.name not in plan.changed_roles:
                continue
            else:
                role.row_version += 1
                role.updated_at = timezone.now()
                role.save(update_fields=["row_version", "updated_at"])
            role.role_groups.set(groups)
        bump_owner(owner)
        if plan.impact and any(
            c.area.code == catalog.USERS and not c.is_raise
            for u in plan.impact.users
            for c in u.changes
        ):
            check_keeps_an_administrator(
                owner,
                would_lose=[
                    u.user
                    for u in plan.impact.users
                    if any(c.area.code == catalog.USERS for c in u.changes)
                ],
            )
        audit.record(
            AuditAction.ROLE_MODEL_IMPORTED,
            actor=actor,
            target=owner,
            owner=owner,
            changes={
                **{f"group {name}": cells for name, cells in plan.changed_groups.items()},
                **{f"role {name}": groups for name, groups in plan.changed_roles.items()},
            },
            reason=reason,
            context={
                "created_groups": plan.new_groups,
                "created_roles": plan.new_roles,
                "users_affected": plan.impact.count if plan.impact else 0,
            },
        )
    return plan
