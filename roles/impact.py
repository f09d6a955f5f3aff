"""Impact preview: whose effective access a proposed change would move, and how, without writing.

A proposal names the changes in memory (cells of role groups, a role's groups, a user's role or
extra groups, overrides, new groups of an import). The affected users and everything their
resolution needs are loaded in a constant number of queries, whatever the number of users; each
user is then resolved twice with `roles.resolver` (as things are, as they would be) and the areas
whose level differs are reported. Users that share the same inputs share one resolution.

Elevations in force (approved just-in-time requests whose window holds `now`) are part of a
user's access until they end: they count before and after (a change to a group also changes
what an elevation of it gives), and a level an elevation lifts is reported with its end.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from . import catalog
from .choices import RoleGroupKind
from .models import AccessRequest, Grant, PermissionOverride, Role, RoleGroup
from .postgres import without_jit
from .resolver import GroupGrant, OverrideRule, Subject, resolve

# A proposed override: a rule to set, or None to remove the user's override of that area.
ProposedOverrides = Mapping[int, Mapping[str, OverrideRule | None]]


@dataclass(frozen=True)
class LevelChange:
    """One area of one user whose level would move.

    `old` and `new` are the levels held now and right after the change, elevations in force
    included (an elevation is part of the user's access until it ends). When an elevation lifts
    a side above what standing access gives, `old_until` / `new_until` hold its end and
    `old_standing` / `new_standing` the level left when it ends; a change that an elevation
    hides until its end (`old == new`) is still reported, since it takes effect then.
    """

    area: catalog.Area
    old: str
    new: str
    old_until: datetime.datetime | None = None
    new_until: datetime.datetime | None = None
    old_standing: str | None = None
    new_standing: str | None = None

    @property
    def is_raise(self) -> bool:
        if self.old != self.new:
            return self.area.rank(self.new) > self.area.rank(self.old)
        old = self.old_standing or self.old
        new = self.new_standing or self.new
        return self.area.rank(new) > self.area.rank(old)

    @property
    def takes_effect_at(self) -> datetime.datetime | None:
        """When an elevation hides the change until its end: that end (else None, at once)."""
        if self.old != self.new:
            return None
        ends = [t for t in (self.old_until, self.new_until) if t is not None]
        return min(ends) if ends else None


@dataclass(frozen=True)
class UserRow:
    """The few facts of a user that a preview needs (loaded as tuples: previews reach many)."""

    pk: int
    username: str
    label: str
    role_id: int | None
    allow_login: bool
    allow_api_read: bool
    allow_api_write: bool
    kind: str
    privilege_level: int
    is_superuser: bool

    def __str__(self) -> str:
        return self.label


@dataclass
class UserImpact:
    """A user whose effective access would change, every area that would move, and the
    application levels they would hold before and after (what separation of duties reads)."""

    user: UserRow
    changes: list[LevelChange]
    levels_before: dict[str, str] = field(default_factory=dict)
    levels_after: dict[str, str] = field(default_factory=dict)


@dataclass
class Proposal:
    """A change described in memory; every mapping replaces what is stored for its key.

    - `grants`: {group id: {area: level}}: cells to set ("none" removes the grant); other cells
      of the group stay as they are unless `replace_grants` holds the group id.
    - `role_groups`: {role id: set of group ids}.
    - `user_roles`: {user id: role id or None}; `user_groups`: {user id: set of extra group ids}.
    - `overrides`: {user id: {area: OverrideRule or None}}.
    - `new_groups`: {temporary (negative) id: (name, kind)} for groups an import would create.
    """

    grants: dict[int, dict[str, str]] = field(default_factory=dict)
    replace_grants: set[int] = field(default_factory=set)
    role_groups: dict[int, set[int]] = field(default_factory=dict)
    user_roles: dict[int, int | None] = field(default_factory=dict)
    user_groups: dict[int, set[int]] = field(default_factory=dict)
    overrides: dict[int, dict[str, OverrideRule | None]] = field(default_factory=dict)
    new_groups: dict[int, tuple[str, str]] = field(default_factory=dict)

    def is_empty(self) -> bool:
        return not (
            self.grants or self.role_groups or self.user_roles or self.user_groups or self.overrides
        )


@dataclass
class Impact:
    """The users whose access would change, sorted by name; `examined` counts users looked at."""

    users: list[UserImpact]
    examined: int

    @property
    def count(self) -> int:
        return len(self.users)

    def for_user(self, user_id: int) -> UserImpact | None:
        return next((u for u in self.users if u.user.pk == user_id), None)

    def as_dict(self) -> dict[str, list[tuple[str, str, str]]]:
        """Return {username: [(area, old, new), ...]} (for tests and audit context)."""
        return {
            u.user.username: [(c.area.code, c.old, c.new) for c in u.changes] for u in self.users
        }


_USER_FIELDS = (
    "id",
    "username",
    "first_name",
    "last_name",
    "display_name",
    "role_id",
    "allow_login",
    "allow_api_read",
    "allow_api_write",
    "kind",
    "privilege_level",
    "is_superuser",
)


(_ROLE, _LOGIN, _API_READ, _API_WRITE, _KIND, _PRIVILEGE, _SUPERUSER) = range(5, 12)


def _user_row(row: tuple) -> UserRow:
    pk, username, first, last, display, role_id, login, api_read, api_write, kind, priv, su = row
    label = display or f"{first} {last}".strip() or username
    return UserRow(pk, username, label, role_id, login, api_read, api_write, kind, priv, su)


def preview(owner, proposal: Proposal, *, now: datetime.datetime | None = None) -> Impact:
    """Return every user of `owner` whose effective access `proposal` would change, and how."""
    if proposal.is_empty():
        return Impact(users=[], examined=0)
    with without_jit():
        return _preview(owner, proposal, now or timezone.now())


def _preview(owner, proposal: Proposal, now: datetime.datetime) -> Impact:
    User = get_user_model()

    role_through = Role.role_groups.through
    extra_through = User.extra_role_groups.through

    changed_groups = set(proposal.grants)
    # Roles that reach a changed group now are affected, as are the roles being re-composed.
    affected_roles = set(proposal.role_groups)
    if changed_groups:
        affected_roles |= set(
            role_through.objects.filter(
                rolegroup_id__in=changed_groups, role__owner=owner
            ).values_list("role_id", flat=True)
        )
    reach = Q(pk__in=set(proposal.user_roles) | set(proposal.user_groups) | set(proposal.overrides))
    if affected_roles:
        reach |= Q(role_id__in=affected_roles)
    if changed_groups:
        reach |= Q(
            pk__in=extra_through.objects.filter(rolegroup_id__in=changed_groups).values("user_id")
        )
        reach |= Q(
            pk__in=AccessRequest.objects.active(now)
            .filter(role_group_id__in=changed_groups)
            .values("user_id")
        )
    users_qs = User.objects.filter(owner=owner).filter(reach)
    # Plain tuples: a preview can reach every user of the owner.
    users = list(
        users_qs.order_by("last_name", "first_name", "username").values_list(*_USER_FIELDS)
    )
    if not users:
        return Impact(users=[], examined=0)
    user_ids = users_qs.values("pk")

    # Current composition: roles' groups and users' extra groups.
    role_ids = {u[_ROLE] for u in users if u[_ROLE]} | {
        r for r in proposal.user_roles.values() if r
    }
    role_ids |= set(proposal.role_groups)
    groups_of_role: dict[int, set[int]] = defaultdict(set)
    for role_id, group_id in role_through.objects.filter(role_id__in=role_ids).values_list(
        "role_id", "rolegroup_id"
    ):
        groups_of_role[role_id].add(group_id)
    role_names = dict(Role.objects.filter(pk__in=role_ids).values_list("pk", "name"))
    extra_sets: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in extra_through.objects.filter(user_id__in=user_ids).values_list(
        "user_id", "rolegroup_id"
    ):
        extra_sets[user_id].add(group_id)
    extra_of_user = {user_id: frozenset(groups) for user_id, groups in extra_sets.items()}

    # Elevations in force: (group, start, end, request) per user, counted before and after.
    elevation_sets: dict[int, list[tuple[int, datetime.datetime, datetime.datetime, int]]]
    elevation_sets = defaultdict(list)
    for user_id, group_id, starts_at, ends_at, request_id in (
        AccessRequest.objects.active(now)
        .filter(user_id__in=user_ids)
        .order_by("ends_at", "pk")
        .values_list("user_id", "role_group_id", "starts_at", "ends_at", "pk")
    ):
        elevation_sets[user_id].append((group_id, starts_at, ends_at, request_id))
    elevations_of = {user_id: tuple(rows) for user_id, rows in elevation_sets.items()}

    # Grants of every group involved, before and after.
    group_ids = set(changed_groups)
    for groups in (*groups_of_role.values(), *extra_of_user.values()):
        group_ids |= groups
    for groups in (*proposal.role_groups.values(), *proposal.user_groups.values()):
        group_ids |= groups
    for rows in elevations_of.values():
        group_ids |= {row[0] for row in rows}
    stored_ids = {g for g in group_ids if g > 0}
    group_info: dict[int, tuple[str, str]] = dict(proposal.new_groups)
    for pk, name, kind in RoleGroup.objects.filter(pk__in=stored_ids).values_list(
        "pk", "name", "kind"
    ):
        group_info[pk] = (name, kind)
    cells_before: dict[int, dict[str, str]] = defaultdict(dict)
    for group_id, area, level in Grant.objects.filter(role_group_id__in=stored_ids).values_list(
        "role_group_id", "area", "level"
    ):
        cells_before[group_id][area] = level
    cells_after = {g: dict(cells) for g, cells in cells_before.items()}
    for group_id, cells in proposal.grants.items():
        merged = {} if group_id in proposal.replace_grants else dict(cells_before.get(group_id, {}))
        merged.update(cells)
        cells_after[group_id] = {a: lvl for a, lvl in merged.items() if lvl != catalog.NONE}

    overrides_before: dict[int, dict[str, OverrideRule]] = defaultdict(dict)
    for pk, user_id, area, level, reason, expires_at in (
        PermissionOverride.objects.in_force(now)
        .filter(user_id__in=user_ids)
        .values_list("pk", "user_id", "area", "level", "reason", "expires_at")
    ):
        overrides_before[user_id][area] = OverrideRule(area, level, reason, expires_at, pk)

    grants_cache: dict[tuple, tuple[GroupGrant, ...]] = {}

    def grants_for(groups: frozenset[int], cells: dict[int, dict[str, str]], tag: str):
        key = (tag, groups)
        if key not in grants_cache:
            grants_cache[key] = tuple(
                GroupGrant(g, group_info.get(g, ("", ""))[0], area, level)
                for g in sorted(groups)
                for area, level in cells.get(g, {}).items()
            )
        return grants_cache[key]

    def elevation_grants(elevated: tuple, cells: dict[int, dict[str, str]], tag: str):
        key = (tag, elevated)
        if key not in grants_cache:
            grants_cache[key] = tuple(
                GroupGrant(
                    g,
                    group_info.get(g, ("", ""))[0],
                    area,
                    level,
                    via_role=False,
                    starts_at=starts_at,
                    ends_at=ends_at,
                    request_id=request_id,
                )
                for g, starts_at, ends_at, request_id in elevated
                for area, level in cells.get(g, {}).items()
            )
        return grants_cache[key]

    resolved: dict[tuple, tuple[list[LevelChange], dict[str, str], dict[str, str]]] = {}
    override_keys = {
        user_id: frozenset((a, r.level, r.expires_at) for a, r in rules.items())
        for user_id, rules in overrides_before.items()
    }
    no_groups: frozenset[int] = frozenset()
    dp_min = owner.data_protection_min_privilege
    impacts = []
    for row in users:
        pk, role_before = row[0], row[_ROLE]
        role_after = proposal.user_roles.get(pk, role_before)
        extra_before = extra_of_user.get(pk, no_groups)
        extra_after = proposal.user_groups.get(pk)
        proposed_overrides = proposal.overrides.get(pk)
        # Users with the same inputs resolve alike: one resolution per distinct key.
        key = (
            role_before,
            role_after,
            extra_before,
            frozenset(extra_after) if extra_after is not None else None,
            override_keys.get(pk),
            tuple(proposed_overrides.items()) if proposed_overrides else None,
            row[_LOGIN],
            row[_API_READ],
            row[_API_WRITE],
            row[_KIND],
            row[_PRIVILEGE] >= dp_min,
            row[_SUPERUSER],
            elevations_of.get(pk, ()),
        )
        if key not in resolved:
            resolved[key] = _changes(
                row,
                groups_before=groups_of_role.get(role_before, no_groups) | extra_before
                if role_before
                else extra_before,
                groups_after=frozenset(
                    proposal.role_groups.get(role_after, groups_of_role.get(role_after, ()))
                    if role_after
                    else ()
                )
                | (frozenset(extra_after) if extra_after is not None else extra_before),
                ov_before=overrides_before.get(pk, {}),
                proposed=proposed_overrides or {},
                dp_min=dp_min,
                role_name=role_names.get(role_after or 0, ""),
                grants_for=grants_for,
                elevated=elevations_of.get(pk, ()),
                elevation_grants=elevation_grants,
                cells_before=cells_before,
                cells_after=cells_after,
                group_info=group_info,
                now=now,
            )
        changes, levels_before, levels_after = resolved[key]
        if changes:
            impacts.append(UserImpact(_user_row(row), changes, levels_before, levels_after))
    return Impact(users=impacts, examined=len(users))


_CHANNEL_OF_KIND = {
    RoleGroupKind.APPLICATION: catalog.Channel.APPLICATION,
    RoleGroupKind.API: catalog.Channel.API,
}


def _changes(
    row,
    *,
    groups_before,
    groups_after,
    ov_before,
    proposed,
    dp_min,
    role_name,
    grants_for,
    elevated,
    elevation_grants,
    cells_before,
    cells_after,
    group_info,
    now,
) -> tuple[list[LevelChange], dict[str, str], dict[str, str]]:
    """Resolve one user as things are and as proposed; return the areas whose level moves and
    the application levels before and after (elevations in force included)."""
    groups_before, groups_after = frozenset(groups_before), frozenset(groups_after)
    ov_after = dict(ov_before)
    for area, rule in proposed.items():
        if rule is None:
            ov_after.pop(area, None)
        else:
            ov_after[area] = rule
    subject = Subject(
        allow_login=row[_LOGIN],
        allow_api_read=row[_API_READ],
        allow_api_write=row[_API_WRITE],
        interactive=row[_KIND] == "interactive",
        privilege_level=row[_PRIVILEGE],
        data_protection_min_privilege=dp_min,
        is_superuser=row[_SUPERUSER],
        role_name=role_name,
    )
    elevated_groups = {e[0] for e in elevated}
    kinds = {
        group_info.get(g, ("", RoleGroupKind.APPLICATION))[1]
        for g in (*groups_before, *groups_after, *elevated_groups)
    }
    channels = {_CHANNEL_OF_KIND.get(k, catalog.Channel.APPLICATION) for k in kinds}
    channels |= {catalog.get(a).channel for a in (*ov_before, *ov_after)}
    changes = []
    levels: dict[str, dict[str, str]] = {"before": {}, "after": {}}
    before_grants = grants_for(groups_before, cells_before, "before")
    after_grants = grants_for(groups_after, cells_after, "after")
    before_elevated = elevation_grants(elevated, cells_before, "before") if elevated else ()
    after_elevated = elevation_grants(elevated, cells_after, "after") if elevated else ()
    for channel in catalog.Channel.ALL:
        if channel not in channels:
            continue
        old = resolve(channel, subject, before_grants, ov_before.values(), now=now, explain=False)
        new = resolve(channel, subject, after_grants, ov_after.values(), now=now, explain=False)
        old_now, new_now = old, new
        if elevated:
            old_now = resolve(
                channel,
                subject,
                (*before_grants, *before_elevated),
                ov_before.values(),
                now=now,
                explain=False,
            )
            new_now = resolve(
                channel,
                subject,
                (*after_grants, *after_elevated),
                ov_after.values(),
                now=now,
                explain=False,
            )
        if channel == catalog.Channel.APPLICATION:
            levels = {"before": old_now.levels, "after": new_now.levels}
        for area in catalog.areas_for(channel):
            code = area.code
            old_level, new_level = old_now.level(code), new_now.level(code)
            old_standing, new_standing = old.level(code), new.level(code)
            if old_level == new_level and old_standing == new_standing:
                continue
            old_until = _until(before_elevated, code, old_level, now)
            new_until = _until(after_elevated, code, new_level, now)
            changes.append(
                LevelChange(
                    area,
                    old_level,
                    new_level,
                    old_until=old_until if old_level != old_standing else None,
                    new_until=new_until if new_level != new_standing else None,
                    old_standing=old_standing if old_level != old_standing else None,
                    new_standing=new_standing if new_level != new_standing else None,
                )
            )
    return changes, levels["before"], levels["after"]


def _until(grants, code: str, level: str, now) -> datetime.datetime | None:
    """Return the latest end of the elevations in force that give `level` on `code` (or, when
    a gate capped the level, that give anything on it)."""
    on_area = [g for g in grants if g.area == code and g.ends_at is not None and g.ends_at > now]
    ends = [g.ends_at for g in on_area if g.level == level] or [g.ends_at for g in on_area]
    return max(ends) if ends else None
