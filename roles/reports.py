"""Read-only questions about the role model, answered in SQL: who has access, and compare.

"Who has access" must stay fast at 100k users, so it never resolves users one by one: the same
rule as `roles.resolver` (an override in force decides its area; else the best group level; then
the gates) is written as one query over grants, role memberships, extra groups and overrides.
Only the page of users shown is then explained, in a constant number of queries.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from . import catalog
from .choices import RoleGroupKind
from .models import AccessRequest, Grant, PermissionOverride, Role, RoleGroup


def _kind_of(area: catalog.Area) -> str:
    return RoleGroupKind.API if area.channel == catalog.Channel.API else RoleGroupKind.APPLICATION


def _levels_reaching(area: catalog.Area, level: str) -> list[str]:
    return [lvl for lvl in area.levels if area.rank(lvl) >= area.rank(level)]


def who_has_access(
    owner, code: str, level: str, *, now: datetime.datetime | None = None
) -> QuerySet:
    """Return the users of `owner` whose effective level on `code` reaches `level`, by name."""
    User = get_user_model()

    area = catalog.validate(code, level)
    if level == catalog.NONE:
        raise ValueError("Choose a level above no access.")
    now = now or timezone.now()
    enough = _levels_reaching(area, level)
    granting = Grant.objects.filter(
        area=code, level__in=enough, role_group__owner=owner, role_group__kind=_kind_of(area)
    ).values("role_group_id")
    via_role = Role.role_groups.through.objects.filter(rolegroup_id__in=granting).values("role_id")
    via_extra = User.extra_role_groups.through.objects.filter(
        user_id=OuterRef("pk"), rolegroup_id__in=granting
    )
    via_elevation = AccessRequest.objects.active(now).filter(
        user_id=OuterRef("pk"), role_group_id__in=granting
    )
    in_force = PermissionOverride.objects.in_force(now).filter(user_id=OuterRef("pk"), area=code)
    reaches = Exists(in_force.filter(level__in=enough)) | (
        ~Exists(in_force)
        & (
            Q(role_id__in=via_role)
            | Exists(via_extra)
            | Exists(via_elevation)
            | Q(is_superuser=True)
        )
    )
    users = User.objects.filter(owner=owner).filter(reaches)
    if area.channel == catalog.Channel.APPLICATION:
        users = users.filter(allow_login=True, kind="interactive")
        if area.is_data_protection:
            users = users.filter(
                Q(privilege_level__gte=owner.data_protection_min_privilege) | Q(is_superuser=True)
            )
    else:
        users = users.filter(Q(allow_api_read=True) | Q(allow_api_write=True))
        if level == catalog.WRITE:
            users = users.filter(allow_api_write=True)
    return users.order_by("last_name", "first_name", "pk")  # the index user_owner_name


@dataclass
class AccessRow:
    """One user who reaches the area: the level they hold and everything that gives it."""

    user: object
    level: str
    through: list[str] = field(default_factory=list)


def explain_access(owner, code: str, users: list, *, now=None) -> list[AccessRow]:
    """Return, for a page of users from `who_has_access`, their level and what gives it."""
    User = get_user_model()

    area = catalog.get(code)
    now = now or timezone.now()
    ids = [u.pk for u in users]
    overrides = {
        o.user_id: o
        for o in PermissionOverride.objects.in_force(now).filter(user_id__in=ids, area=code)
    }
    grants = {
        g.role_group_id: g
        for g in Grant.objects.filter(
            area=code, role_group__owner=owner, role_group__kind=_kind_of(area)
        )
        .exclude(level=catalog.NONE)
        .select_related("role_group")
    }
    by_role: dict[int, list[int]] = defaultdict(list)
    role_ids = {u.role_id for u in users if u.role_id}
    for role_id, group_id in Role.role_groups.through.objects.filter(
        role_id__in=role_ids, rolegroup_id__in=list(grants)
    ).values_list("role_id", "rolegroup_id"):
        by_role[role_id].append(group_id)
    extra: dict[int, list[int]] = defaultdict(list)
    for user_id, group_id in User.extra_role_groups.through.objects.filter(
        user_id__in=ids, rolegroup_id__in=list(grants)
    ).values_list("user_id", "rolegroup_id"):
        extra[user_id].append(group_id)
    elevated: dict[int, list[tuple[int, int, datetime.datetime]]] = defaultdict(list)
    for request_id, user_id, group_id, ends_at in (
        AccessRequest.objects.active(now)
        .filter(user_id__in=ids, role_group_id__in=list(grants))
        .values_list("pk", "user_id", "role_group_id", "ends_at")
    ):
        elevated[user_id].append((request_id, group_id, ends_at))

    rows = []
    for user in users:
        override = overrides.get(user.pk)
        if override is not None:
            level = override.level
            until = f" until {override.expires_at:%Y-%m-%d %H:%M}" if override.expires_at else ""
            through = [f"Override ({override.level}){until}: {override.reason}"]
        else:
            through, best = [], catalog.NONE
            if user.is_superuser:
                best = area.top
                through.append("Platform administrator")
            for group_id in by_role.get(user.role_id, []):
                grant = grants[group_id]
                through.append(f"Role {user.role.name} → {grant.role_group.name} ({grant.level})")
                best = max(best, grant.level, key=area.rank)
            for group_id in extra.get(user.pk, []):
                grant = grants[group_id]
                through.append(f"Extra group {grant.role_group.name} ({grant.level})")
                best = max(best, grant.level, key=area.rank)
            for request_id, group_id, ends_at in elevated.get(user.pk, []):
                grant = grants[group_id]
                through.append(
                    f"Elevation {grant.role_group.name} ({grant.level}) until "
                    f"{ends_at:%Y-%m-%d %H:%M}, request #{request_id}"
                )
                best = max(best, grant.level, key=area.rank)
            level = best
        if (
            area.channel == catalog.Channel.API
            and level == catalog.WRITE
            and not (user.allow_api_write)
        ):
            level = catalog.READ
        rows.append(AccessRow(user=user, level=level, through=through))
    return rows


@dataclass
class CompareRow:
    area: catalog.Area
    left: str
    right: str

    @property
    def differs(self) -> bool:
        return self.left != self.right


def levels_of_groups(group_ids_by_side: dict[str, set[int]]) -> dict[str, dict[str, str]]:
    """Return {side: {area: best level}} over the grants of each side's groups, in one query."""
    every = set().union(*group_ids_by_side.values()) if group_ids_by_side else set()
    cells: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for group_id, code, level in Grant.objects.filter(role_group_id__in=every).values_list(
        "role_group_id", "area", "level"
    ):
        cells[group_id].append((code, level))
    result: dict[str, dict[str, str]] = {}
    for side, ids in group_ids_by_side.items():
        best: dict[str, str] = {}
        for group_id in ids:
            for code, level in cells.get(group_id, []):
                area = catalog.BY_CODE.get(code)
                if area is None or not area.is_level(level):
                    continue
                if area.rank(level) > area.rank(best.get(code, catalog.NONE)):
                    best[code] = level
        result[side] = best
    return result


def compare(left, right) -> list[CompareRow]:
    """Return one row per area that either side grants, in catalog order (roles or groups)."""
    sides = {}
    for side, obj in (("left", left), ("right", right)):
        if isinstance(obj, RoleGroup):
            sides[side] = {obj.pk}
        else:
            sides[side] = {g.pk for g in obj.role_groups.all()}
    levels = levels_of_groups(sides)
    return [
        CompareRow(
            area, levels["left"].get(area.code, "none"), levels["right"].get(area.code, "none")
        )
        for area in catalog.AREAS
        if area.code in levels["left"] or area.code in levels["right"]
    ]
