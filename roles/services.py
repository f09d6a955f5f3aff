"""Every write of the permission engine: role groups and their matrix, roles, overrides, clones.

A user's role and extra groups are written by `accounts.users.set_user_access`; the role
model's export and import are in `roles.transfer`.

Each function checks the rules (owner, escalation through `roles.guards`, `row_version` for
concurrent edits), changes the rows, bumps the permission versions that the change can move and
records its audit event, all in one transaction.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import F, ProtectedError, Q
from django.http import Http404
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.services import diff
from portal.reasons import required_reason

from . import catalog, impact, permissions, sod
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


def check_cells(kind: str, levels: Mapping[str, str]) -> None:
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
    reach = Q(role__role_groups=group) | Q(extra_role_groups=group)
    return list(
        get_user_model().objects.filter(reach, owner_id=group.owner_id, is_superuser=False)[:1]
    )


# Role groups and the matrix ------------------------------------------------------------------


def create_role_group(
    *,
    actor,
    reason: str,
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
    check_cells(kind, cells)
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
            reason=reason,
            context=context or {},
        )
    return group


def update_role_group(
    group: RoleGroup,
    *,
    actor,
    reason: str,
    expected_row_version: int | None,
    name: str,
    description: str = "",
    self_activation: bool | None = None,
) -> RoleGroup:
    """Rename a role group, change its description, or whether people eligible for it activate
    it themselves (`self_activation`; None leaves it as it is)."""
    _check_owner(actor, group)
    with transaction.atomic():
        group = RoleGroup.objects.select_for_update().get(pk=group.pk)
        _check_version(group, expected_row_version, "role group")
        name = _clean_name(RoleGroup, group.owner, name, exclude_pk=group.pk)
        before = {
            "name": group.name,
            "description": group.description,
            "self_activation": group.self_activation,
        }
        group.name, group.description = name, description.strip()
        if self_activation is not None:
            group.self_activation = self_activation
        changes = diff(
            before,
            {
                "name": name,
                "description": group.description,
                "self_activation": group.self_activation,
            },
        )
        if not changes:
            return group
        group.row_version += 1
        group.updated_at = timezone.now()
        group.save(
            update_fields=["name", "description", "self_activation", "row_version", "updated_at"]
        )
        bump_owner(group.owner)  # explanations name the group
        audit.record(
            AuditAction.ROLE_GROUP_CHANGED,
            actor=actor,
            target=group,
            changes=changes,
            reason=reason,
        )
    return group


def set_grants(
    group: RoleGroup,
    levels: Mapping[str, str],
    *,
    actor,
    reason: str,
    expected_row_version: int | None,
    details: str = "",
) -> dict[str, list[str]]:
    """Set cells of a role group's matrix ({area: level}; "none" removes; others unchanged).

    Return the cells that changed as {area: [old, new]}: that is also the audit event's changes.
    Only raised cells are checked against the actor's own levels (lowering is never escalation).
    """
    _check_owner(actor, group)
    check_cells(group.kind, levels)
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
        if raised:
            sod.check(
                group.owner,
                Proposal(grants={group.pk: {code: new for code, (_, new) in changed.items()}}),
                actor=actor,
            )
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


def area_matches(area: catalog.Area, query: str) -> bool:
    """Say whether an area is among those a matrix search for `query` shows."""
    query = query.lower().strip()
    return not query or query in area.label.lower() or query in area.code


def fill_category(
    cells: Mapping[str, str], *, channel: str, category: str, level: str, query: str = ""
) -> dict[str, str]:
    """Return `cells` with every area of `category` shown by `query` set to `level`.

    Areas that have no such level (an area without "run", say) keep their cell: a whole
    column is set only where the level means something.
    """
    filled = dict(cells)
    for area in catalog.areas_for(channel):
        if area.category == category and area.is_level(level) and area_matches(area, query):
            filled[area.code] = level
    return filled


def group_usage(group: RoleGroup, *, limit: int = 50) -> tuple[list[Role], list, int]:
    """Return (roles using the group, up to `limit` users holding it as extra, their count)."""
    roles = list(group.roles.order_by("name"))
    users_qs = group.extra_users.order_by("last_name", "first_name", "username")
    return roles, list(users_qs[:limit]), users_qs.count()


def delete_role_group(
    group: RoleGroup, *, actor, reason: str, expected_row_version: int | None = None
) -> None:
    """Delete a role group that no role uses and no user holds as an extra group; say why."""
    _check_owner(actor, group)
    reason = required_reason(reason, "Say why this role group is deleted.")
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
            reason=reason,
        )
        group.delete()
        bump_owner(group.owner)


def clone_role_group(group: RoleGroup, *, actor, reason: str, name: str) -> RoleGroup:
    """Create a copy of a role group, with the same kind and grants, under a new name."""
    _check_owner(actor, group)
    return create_role_group(
        actor=actor,
        name=name,
        kind=group.kind,
        description=group.description,
        grants=group.levels(),
        reason=reason,
        context={"cloned_from": group.name},
    )


# Roles ---------------------------------------------------------------------------------------


def _owned_groups(actor, groups: Iterable) -> list[RoleGroup]:
    groups = list(groups)
    _check_owner(actor, *groups)
    return groups


def create_role(
    *,
    actor,
    reason: str,
    name: str,
    description: str = "",
    groups: Iterable = (),
    context: dict | None = None,
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
            reason=reason,
            context=context or {},
        )
    return role


def update_role(
    role: Role,
    *,
    actor,
    reason: str,
    expected_row_version: int | None,
    name: str,
    description: str = "",
    groups: Iterable | None = None,
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
    if added:
        sod.check(role.owner, Proposal(role_groups={role.pk: {g.pk for g in groups}}), actor=actor)
    was_admin = list(role.users.exclude(is_superuser=True)[:1])
    role.role_groups.set(groups)
    if was_admin:
        check_keeps_an_administrator(role.owner, would_lose=was_admin)


def set_role_groups(
    role: Role, groups: Iterable, *, actor, reason: str, expected_row_version: int | None
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


def delete_role(role: Role, *, actor, reason: str, expected_row_version: int | None = None) -> None:
    """Delete a role that no user holds; say why."""
    _check_owner(actor, role)
    reason = required_reason(reason, "Say why this role is deleted.")
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
            reason=reason,
        )
        try:
            role.delete()
        except ProtectedError as exc:
            users = [str(obj) for obj in exc.protected_objects][:10]
            raise InUse(
                f"{role.name} is still used by: {', '.join(users)}.", users=[], user_count=0
            ) from exc
        bump_owner(role.owner)


def clone_role(role: Role, *, actor, reason: str, name: str) -> Role:
    """Create a copy of a role, with the same role groups, under a new name."""
    _check_owner(actor, role)
    return create_role(
        actor=actor,
        name=name,
        description=role.description,
        groups=role.role_groups.all(),
        reason=reason,
        context={"cloned_from": role.name},
    )


# Overrides (a user's role and extra groups are set by accounts.users.set_user_access) ------


def _lock_user(user):
    return get_user_model().objects.select_for_update().select_related("owner").get(pk=user.pk)


def _touch_user(user, **fields) -> None:
    """Write `fields` on the user row, count the save, and keep the in-memory object in step."""
    now = timezone.now()
    get_user_model().objects.filter(pk=user.pk).update(
        row_version=F("row_version") + 1, updated_at=now, **fields
    )
    for name, value in fields.items():
        setattr(user, name, value)
    user.refresh_from_db(fields=["row_version", "updated_at"])


def _check_data_protection(actor, area: catalog.Area) -> None:
    """Only someone holding a data-protection area may set or remove overrides of it."""
    if (
        area.is_data_protection
        and not actor.is_superuser
        and not held(actor).has(area.code, catalog.READ)
    ):
        raise EscalationRefused(f"Only someone who holds {area.label} may change overrides of it.")


def check_override_expiry(expires_at: datetime.datetime | None, *, now=None) -> None:
    """Refuse an override expiry that is not in the future (empty means it never expires).

    The override form's preview asks the same, so a preview never shows what saving refuses.
    """
    if expires_at is not None and expires_at <= (now or timezone.now()):
        raise ValidationError({"expires_at": "Choose a time in the future, or leave it empty."})


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
    reason = required_reason(reason, "Say why this override is needed.")
    check_override_expiry(expires_at)
    _check_owner(actor, user)
    check_can_manage_user(actor, user)
    _check_data_protection(actor, info)
    check_can_grant(actor, {area: level})
    with transaction.atomic():
        locked = _lock_user(user)
        was_admin = info.code == catalog.USERS and administers_users(locked)
        existing = PermissionOverride.objects.filter(user=user, area=area).first()
        rule = OverrideRule(area, level, reason, expires_at)
        sod.check(locked.owner, Proposal(overrides={user.pk: {area: rule}}), actor=actor)
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
    reason = required_reason(reason, "Say why this override is removed.")
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
