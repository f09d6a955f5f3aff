"""Every write of the permission engine: role groups and their matrix, roles, assignments,
overrides, clones and the role model's export and import.

Each function checks the rules (owner, escalation through `roles.guards`, `row_version` for
concurrent edits), changes the rows, bumps the permission versions that the change can move and
records its audit event, all in one transaction.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, ProtectedError, Q
from django.http import Http404
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.services import diff

from . import catalog, impact, permissions
from .choices import RoleGroupKind
from .guards import (
    EscalationRefused,
    administers_users,
    check_can_grant,
    check_can_grant_groups,
    check_can_manage_user,
    check_keeps_an_administrator,
    held,
)
from .impact import Impact, Proposal
from .models import Grant, PermissionOverride, Role, RoleGroup
from .resolver import OverrideRule
from .versions import bump_owner, bump_user

EXPORT_FORMAT = "billing-access-role-model"


class StaleVersion(ValidationError):
    """The record changed since the person opened it; their change would overwrite another."""

    def __init__(self, what: str):
        super().__init__(
            f"Someone else changed this {what} since you opened it. Reload the page, check "
            "their change and make yours again.",
            code="stale",
        )


class InUse(ValidationError):
    """A delete is refused because something still uses the record; `users`/`roles` say what."""

    def __init__(self, message: str, *, roles=(), users=(), user_count: int = 0):
        super().__init__(message, code="in_use")
        self.roles = list(roles)
        self.users = list(users)
        self.user_count = user_count


# Helpers ---------------------------------------------------------------------------------------


def _check_owner(actor, *objects) -> None:
    """Answer 404 for an object of another owner (platform superusers excepted)."""
    if actor.is_superuser:
        return
    for obj in objects:
        if obj is not None and obj.owner_id != actor.owner_id:
            raise Http404("Not found.")


def _check_version(obj, expected: int | None, what: str) -> None:
    if expected is not None and int(expected) != obj.row_version:
        raise StaleVersion(what)


def _clean_name(model, owner, name: str, *, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise ValidationError({"name": "Enter a name."})
    clash = model.objects.filter(owner=owner, name__iexact=name)
    if exclude_pk is not None:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError({"name": f"“{name}” is already used by another one; pick another."})
    return name


def _check_cells(kind: str, levels: Mapping[str, str]) -> None:
    """Refuse unknown areas, unknown levels and areas of the other channel, naming each."""
    channel = catalog.Channel.API if kind == RoleGroupKind.API else catalog.Channel.APPLICATION
    problems = []
    for code, level in levels.items():
        try:
            area = catalog.validate(code, level)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        if area.channel != channel:
            problems.append(f"{area.label} cannot be granted by a {kind} group.")
    if problems:
        raise ValidationError(problems)


def _group_names(groups: Iterable) -> list[str]:
    return sorted(g.name for g in groups)


def _lower_than(area: catalog.Area, old: str, new: str) -> bool:
    return area.rank(new) < area.rank(old)


def _users_reaching(group) -> list:
    """Return a user (at most one) who reaches `group` through a role or as an extra group."""
    from accounts.models import User

    reach = Q(role__role_groups=group) | Q(extra_role_groups=group)
    return list(User.objects.filter(reach, owner_id=group.owner_id, is_superuser=False)[:1])


# Role groups and the matrix ------------------------------------------------------------------


def create_role_group(
    *,
    actor,
    name: str,
    kind: str = RoleGroupKind.APPLICATION,
    description: str = "",
    grants: Mapping[str, str] | None = None,
    context: dict | None = None,
) -> RoleGroup:
    """Create a role group of the actor's owner, optionally with its first grants."""
    owner = actor.owner
    if kind not in RoleGroupKind.values:
        raise ValidationError({"kind": "Choose application or API."})
    cells = {a: lvl for a, lvl in (grants or {}).items() if lvl != catalog.NONE}
    _check_cells(kind, cells)
    check_can_grant(actor, cells)
    with transaction.atomic():
        name = _clean_name(RoleGroup, owner, name)
        group = RoleGroup.objects.create(
            owner=owner, name=name, kind=kind, description=description.strip()
        )
        Grant.objects.bulk_create(
            [Grant(role_group=group, area=a, level=lvl) for a, lvl in sorted(cells.items())]
        )
        audit.record(
            AuditAction.ROLE_GROUP_CREATED,
            actor=actor,
            target=group,
            owner=owner,
            changes={
                "name": [None, name],
                "kind": [None, kind],
                **{a: [catalog.NONE, lvl] for a, lvl in sorted(cells.items())},
            },
            context=context or {},
        )
    return group


def update_role_group(
    group: RoleGroup, *, actor, expected_row_version: int | None, name: str, description: str = ""
) -> RoleGroup:
    """Rename a role group or change its description."""
    _check_owner(actor, group)
    with transaction.atomic():
        group = RoleGroup.objects.select_for_update().get(pk=group.pk)
        _check_version(group, expected_row_version, "role group")
        name = _clean_name(RoleGroup, group.owner, name, exclude_pk=group.pk)
        before = {"name": group.name, "description": group.description}
        group.name, group.description = name, description.strip()
        changes = diff(before, {"name": name, "description": group.description})
        if not changes:
            return group
        group.row_version += 1
        group.updated_at = timezone.now()
        group.save(update_fields=["name", "description", "row_version", "updated_at"])
        bump_owner(group.owner)  # explanations name the group
        audit.record(AuditAction.ROLE_GROUP_CHANGED, actor=actor, target=group, changes=changes)
    return group


def set_grants(
    group: RoleGroup,
    levels: Mapping[str, str],
    *,
    actor,
    expected_row_version: int | None,
    reason: str = "",
    details: str = "",
) -> dict[str, list[str]]:
    """Set cells of a role group's matrix ({area: level}; "none" removes; others unchanged).

    Return the cells that changed as {area: [old, new]}: that is also the audit event's changes.
    Only raised cells are checked against the actor's own levels (lowering is never escalation).
    """
    _check_owner(actor, group)
    _check_cells(group.kind, levels)
    with transaction.atomic():
        group = RoleGroup.objects.select_for_update().select_related("owner").get(pk=group.pk)
        _check_version(group, expected_row_version, "role group")
        current = group.levels()
        changed: dict[str, list[str]] = {}
        for code, new in sorted(levels.items()):
            old = current.get(code, catalog.NONE)
            if old != new:
                changed[code] = [old, new]
        if not changed:
            return {}
        raised = {
            code: new
            for code, (old, new) in changed.items()
            if catalog.get(code).rank(new) > catalog.get(code).rank(old)
        }
        check_can_grant(actor, raised)
        group.grants.filter(area__in=list(changed)).delete()
        Grant.objects.bulk_create(
            [
                Grant(role_group=group, area=code, level=new)
                for code, (_, new) in changed.items()
                if new != catalog.NONE
            ]
        )
        group.row_version += 1
        group.updated_at = timezone.now()
        group.save(update_fields=["row_version", "updated_at"])
        bump_owner(group.owner)
        users_cell = changed.get(catalog.USERS)
        if users_cell and _lower_than(catalog.get(catalog.USERS), *users_cell):
            check_keeps_an_administrator(group.owner, would_lose=_users_reaching(group))
        audit.record(
            AuditAction.MATRIX_CHANGED,
            actor=actor,
            target=group,
            changes=changed,
            reason=reason,
            details=details,
        )
    return changed


def group_usage(group: RoleGroup, *, limit: int = 50) -> tuple[list[Role], list, int]:
    """Return (roles using the group, up to `limit` users holding it as extra, their count)."""
    roles = list(group.roles.order_by("name"))
    users_qs = group.extra_users.order_by("last_name", "first_name", "username")
    return roles, list(users_qs[:limit]), users_qs.count()


def delete_role_group(group: RoleGroup, *, actor, expected_row_version: int | None = None) -> None:
    """Delete a role group that no role uses and no user holds as an extra group."""
    _check_owner(actor, group)
    with transaction.atomic():
        group = RoleGroup.objects.select_for_update().select_related("owner").get(pk=group.pk)
        _check_version(group, expected_row_version, "role group")
        roles, users, user_count = group_usage(group)
        if roles or user_count:
            parts = []
            if roles:
                parts.append("roles " + ", ".join(r.name for r in roles))
            if user_count:
                parts.append(f"{user_count} user(s) as an extra group")
            raise InUse(
                f"{group.name} is still used by " + " and ".join(parts) + ".",
                roles=roles,
                users=users,
                user_count=user_count,
            )
        cells = group.levels()
        audit.record(
            AuditAction.ROLE_GROUP_DELETED,
            actor=actor,
            target=group,
            changes={"name": [group.name, None], **{a: [lvl, None] for a, lvl in cells.items()}},
        )
        group.delete()
        bump_owner(group.owner)


def clone_role_group(group: RoleGroup, *, actor, name: str) -> RoleGroup:
    """Create a copy of a role group, with the same kind and grants, under a new name."""
    _check_owner(actor, group)
    return create_role_group(
        actor=actor,
        name=name,
        kind=group.kind,
        description=group.description,
        grants=group.levels(),
        context={"cloned_from": group.name},
    )


# Roles ---------------------------------------------------------------------------------------


def _owned_groups(actor, groups: Iterable) -> list[RoleGroup]:
    groups = list(groups)
    _check_owner(actor, *groups)
    return groups


def create_role(
    *, actor, name: str, description: str = "", groups: Iterable = (), context: dict | None = None
) -> Role:
    """Create a role of the actor's owner combining role groups the actor may hand out."""
    owner = actor.owner
    groups = _owned_groups(actor, groups)
    check_can_grant_groups(actor, groups)
    with transaction.atomic():
        name = _clean_name(Role, owner, name)
        role = Role.objects.create(owner=owner, name=name, description=description.strip())
        role.role_groups.set(groups)
        audit.record(
            AuditAction.ROLE_CREATED,
            actor=actor,
            target=role,
            owner=owner,
            changes={"name": [None, name], "role_groups": [[], _group_names(groups)]},
            context=context or {},
        )
    return role


def update_role(
    role: Role,
    *,
    actor,
    expected_row_version: int | None,
    name: str,
    description: str = "",
    groups: Iterable | None = None,
    reason: str = "",
) -> Role:
    """Rename a role, change its description and, when `groups` is given, its role groups."""
    _check_owner(actor, role)
    groups = _owned_groups(actor, groups) if groups is not None else None
    with transaction.atomic():
        role = Role.objects.select_for_update().select_related("owner").get(pk=role.pk)
        _check_version(role, expected_row_version, "role")
        name = _clean_name(Role, role.owner, name, exclude_pk=role.pk)
        current = list(role.role_groups.all())
        before = {
            "name": role.name,
            "description": role.description,
            "role_groups": _group_names(current),
        }
        after = {
            "name": name,
            "description": description.strip(),
            "role_groups": _group_names(groups if groups is not None else current),
        }
        changes = diff(before, after)
        if not changes:
            return role
        if groups is not None:
            _apply_role_groups(role, current, groups, actor=actor)
        role.name, role.description = name, description.strip()
        role.row_version += 1
        role.updated_at = timezone.now()
        role.save(update_fields=["name", "description", "row_version", "updated_at"])
        bump_owner(role.owner)
        audit.record(
            AuditAction.ROLE_CHANGED, actor=actor, target=role, changes=changes, reason=reason
        )
    return role


def _apply_role_groups(role: Role, current: list, groups: list, *, actor) -> None:
    current_ids = {g.pk for g in current}
    added = [g for g in groups if g.pk not in current_ids]
    check_can_grant_groups(actor, added)
    was_admin = list(role.users.exclude(is_superuser=True)[:1])
    role.role_groups.set(groups)
    if was_admin:
        check_keeps_an_administrator(role.owner, would_lose=was_admin)


def set_role_groups(
    role: Role, groups: Iterable, *, actor, expected_row_version: int | None, reason: str = ""
) -> Role:
    """Replace the role groups of a role (only groups the actor may hand out can be added)."""
    return update_role(
        role,
        actor=actor,
        expected_row_version=expected_row_version,
        name=role.name,
        description=role.description,
        groups=groups,
        reason=reason,
    )


def role_usage(role: Role, *, limit: int = 50) -> tuple[list, int]:
    """Return (up to `limit` users holding the role, how many hold it)."""
    users = role.users.order_by("last_name", "first_name", "username")
    return list(users[:limit]), users.count()


def delete_role(role: Role, *, actor, expected_row_version: int | None = None) -> None:
    """Delete a role that no user holds."""
    _check_owner(actor, role)
    with transaction.atomic():
        role = Role.objects.select_for_update().select_related("owner").get(pk=role.pk)
        _check_version(role, expected_row_version, "role")
        users, count = role_usage(role)
        if count:
            raise InUse(
                f"{role.name} is still held by {count} user(s).", users=users, user_count=count
            )
        audit.record(
            AuditAction.ROLE_DELETED,
            actor=actor,
            target=role,
            changes={
                "name": [role.name, None],
                "role_groups": [_group_names(role.role_groups.all()), None],
            },
        )
        try:
            role.delete()
        except ProtectedError as exc:
            users = [str(obj) for obj in exc.protected_objects][:10]
            raise InUse(
                f"{role.name} is still used by: {', '.join(users)}.", users=[], user_count=0
            ) from exc
        bump_owner(role.owner)


def clone_role(role: Role, *, actor, name: str) -> Role:
    """Create a copy of a role, with the same role groups, under a new name."""
    _check_owner(actor, role)
    return create_role(
        actor=actor,
        name=name,
        description=role.description,
        groups=role.role_groups.all(),
        context={"cloned_from": role.name},
    )


# Users: role, extra groups, overrides --------------------------------------------------------


def _lock_user(user):
    from accounts.models import User

    return User.objects.select_for_update().select_related("owner").get(pk=user.pk)


def _touch_user(user, **fields) -> None:
    """Write `fields` on the user row, count the save, and keep the in-memory object in step."""
    from accounts.models import User

    now = timezone.now()
    User.objects.filter(pk=user.pk).update(
        row_version=F("row_version") + 1, updated_at=now, **fields
    )
    for name, value in fields.items():
        setattr(user, name, value)
    user.refresh_from_db(fields=["row_version", "updated_at"])


def assign_role(user, role: Role | None, *, actor, reason: str = "", details: str = "") -> None:
    """Give a user a role (None removes it); the actor must be able to hand out all its groups."""
    _check_owner(actor, user, role)
    if role is not None and user.owner_id != role.owner_id:
        raise Http404("Not found.")
    check_can_manage_user(actor, user)
    with transaction.atomic():
        locked = _lock_user(user)
        if locked.role_id == (role.pk if role else None):
            return
        if role is not None:
            check_can_grant_groups(actor, role.role_groups.all())
        was_admin = administers_users(locked)
        old_name = locked.role.name if locked.role_id else None
        _touch_user(user, role=role)
        bump_user(user)
        if was_admin:
            check_keeps_an_administrator(locked.owner, would_lose=[_lock_user(user)])
        audit.record(
            AuditAction.USER_CHANGED,
            actor=actor,
            target=user,
            changes={"role": [old_name, role.name if role else None]},
            reason=reason,
            details=details,
        )


def set_extra_groups(user, groups: Iterable, *, actor, reason: str = "", details: str = "") -> None:
    """Replace a user's extra role groups; added groups must not exceed the actor's levels."""
    groups = _owned_groups(actor, groups)
    _check_owner(actor, user)
    if any(g.owner_id != user.owner_id for g in groups):
        raise Http404("Not found.")
    check_can_manage_user(actor, user)
    with transaction.atomic():
        locked = _lock_user(user)
        current = list(locked.extra_role_groups.all())
        current_ids = {g.pk for g in current}
        if current_ids == {g.pk for g in groups}:
            return
        check_can_grant_groups(actor, [g for g in groups if g.pk not in current_ids])
        was_admin = administers_users(locked)
        locked.extra_role_groups.set(groups)
        _touch_user(user)
        bump_user(user)
        if was_admin:
            check_keeps_an_administrator(locked.owner, would_lose=[_lock_user(user)])
        audit.record(
            AuditAction.USER_CHANGED,
            actor=actor,
            target=user,
            changes={"extra_role_groups": [_group_names(current), _group_names(groups)]},
            reason=reason,
            details=details,
        )


def _check_data_protection(actor, area: catalog.Area) -> None:
    """Only someone holding a data-protection area may set or remove overrides of it."""
    if (
        area.is_data_protection
        and not actor.is_superuser
        and not held(actor).has(area.code, catalog.READ)
    ):
        raise EscalationRefused(f"Only someone who holds {area.label} may change overrides of it.")


def set_override(
    user,
    area: str,
    level: str,
    *,
    actor,
    reason: str,
    expires_at: datetime.datetime | None = None,
) -> PermissionOverride:
    """Set one area of one user to `level` whatever the groups say (a raise or a deny)."""
    try:
        info = catalog.validate(area, level)
    except ValueError as exc:
        raise ValidationError({"level": str(exc)}) from exc
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why this override is needed."})
    if expires_at is not None and expires_at <= timezone.now():
        raise ValidationError({"expires_at": "Choose a time in the future, or leave it empty."})
    _check_owner(actor, user)
    check_can_manage_user(actor, user)
    _check_data_protection(actor, info)
    check_can_grant(actor, {area: level})
    with transaction.atomic():
        locked = _lock_user(user)
        was_admin = info.code == catalog.USERS and administers_users(locked)
        existing = PermissionOverride.objects.filter(user=user, area=area).first()
        before = [existing.level, existing.expires_at] if existing else [None, None]
        override, _ = PermissionOverride.objects.update_or_create(
            user=user,
            area=area,
            defaults={
                "level": level,
                "reason": reason,
                "expires_at": expires_at,
                "created_by": actor,
                "created_at": timezone.now(),
            },
        )
        bump_user(user)
        if was_admin:
            check_keeps_an_administrator(locked.owner, would_lose=[_lock_user(user)])
        audit.record(
            AuditAction.OVERRIDE_SET,
            actor=actor,
            target=user,
            changes={area: [before[0], level]},
            reason=reason,
            context={
                "area": info.label,
                "expires_at": expires_at,
                "previous_expires_at": before[1],
            },
        )
    return override


def remove_override(override: PermissionOverride, *, actor, reason: str) -> None:
    """Remove an override: the user's level on that area falls back to what the groups give."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": "Say why this override is removed."})
    user = override.user
    _check_owner(actor, user)
    check_can_manage_user(actor, user)
    info = catalog.BY_CODE.get(override.area)
    if info is not None:
        _check_data_protection(actor, info)
    with transaction.atomic():
        locked = _lock_user(user)
        override = PermissionOverride.objects.select_for_update().get(pk=override.pk)
        if info is not None:
            group_level = permissions.compute(locked, info.channel).group_levels.get(
                info.code, catalog.NONE
            )
            if info.is_level(override.level) and info.rank(group_level) > info.rank(override.level):
                # Removing a restriction hands the groups' level back: that is a grant.
                check_can_grant(actor, {info.code: group_level})
        was_admin = override.area == catalog.USERS and administers_users(locked)
        before = override.level
        override.delete()
        bump_user(user)
        if was_admin:
            check_keeps_an_administrator(locked.owner, would_lose=[_lock_user(user)])
        audit.record(
            AuditAction.OVERRIDE_REMOVED,
            actor=actor,
            target=user,
            changes={override.area: [before, None]},
            reason=reason,
            context={"area": info.label if info else override.area},
        )


# Impact preview --------------------------------------------------------------------------------


def impact_preview(owner, proposal: Proposal | None = None, *, now=None, **changes) -> Impact:
    """Return the users whose effective access a proposed change would move (nothing written).

    Pass a `Proposal`, or its fields as keywords: `grants={group id: {area: level}}`,
    `role_groups={role id: {group ids}}`, `user_roles={user id: role id}`,
    `user_groups={user id: {group ids}}`, `overrides={user id: {area: OverrideRule | None}}`.
    """
    proposal = proposal or Proposal(**changes)
    return impact.preview(owner, proposal, now=now)


def override_rule(area: str, level: str, reason: str = "", expires_at=None) -> OverrideRule:
    """Return the in-memory form of an override, for an impact preview."""
    return OverrideRule(area, level, reason, expires_at)


# Export and import of the role model ----------------------------------------------------------


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
            _check_cells(kind, grants)
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


def import_role_model(model: dict, *, actor, expected_epoch: int | None = None) -> ImportPlan:
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
            context={
                "created_groups": plan.new_groups,
                "created_roles": plan.new_roles,
                "users_affected": plan.impact.count if plan.impact else 0,
            },
        )
    return plan
