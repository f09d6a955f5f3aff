"""Read-only questions about the role model, answered in SQL: who has access, and compare.

"Who has access" must stay fast at 100k users, so it never resolves users one by one: the same
rule as `roles.resolver` (an override in force decides its area; else the best group level; then
the gates) is written as one query over grants, role memberships, extra groups and overrides.
Only the page of users shown is then explained, in a constant number of queries.
"""

from __future__ import annotations

import datetime
import functools
from collections import defaultdict
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core import signing
from django.db import connection
from django.db.models import BigIntegerField, DateTimeField, F, Q, QuerySet, Value
from django.db.models.expressions import RawSQL
from django.db.models.fields.tuple_lookups import Tuple, TupleGreaterThan, TupleLessThan
from django.db.models.functions import Cast
from django.utils import timezone

from . import catalog
from .choices import RequestState, RoleGroupKind
from .models import AccessRequest, Grant, PermissionOverride, Role, RoleGroup


def _kind_of(area: catalog.Area) -> str:
    return RoleGroupKind.API if area.channel == catalog.Channel.API else RoleGroupKind.APPLICATION


def _levels_reaching(area: catalog.Area, level: str) -> list[str]:
    return [lvl for lvl in area.levels if area.rank(lvl) >= area.rank(level)]


def reaching(owner, code: str, level: str, *, now: datetime.datetime | None = None) -> Q:
    """Return the condition on a user of `owner` whose effective level on `code` reaches `level`.

    Each source is an `id IN (subquery)` over the small tables (overrides, extra groups,
    elevations, the roles' groups) that PostgreSQL runs once and keeps as a hash, so checking a
    user costs a few lookups: correlated EXISTS would run a subquery per user (100,000 at a
    large owner) for every page.
    """
    area = catalog.validate(code, level)
    if level == catalog.NONE:
        raise ValueError("Choose a level above no access.")
    now = now or timezone.now()
    enough = _levels_reaching(area, level)
    sql = _sources(len(enough))
    granting = [code, *enough, owner.pk, _kind_of(area)]
    reaches = Q(pk__in=_raw(sql.overridden_to, [code, *enough, now])) | (
        ~Q(pk__in=_raw(sql.overridden, [code, now]))
        & (
            Q(role_id__in=_raw(sql.via_role, granting))
            | Q(pk__in=_raw(sql.via_extra, granting))
            | Q(pk__in=_raw(sql.via_elevation, [*granting, RequestState.APPROVED, now, now]))
            | Q(is_superuser=True)
        )
    )
    condition = Q(owner=owner) & reaches
    if area.channel == catalog.Channel.APPLICATION:
        condition &= Q(allow_login=True, kind="interactive")
        if area.is_data_protection:
            condition &= Q(privilege_level__gte=owner.data_protection_min_privilege) | Q(
                is_superuser=True
            )
    else:
        condition &= Q(allow_api_read=True) | Q(allow_api_write=True)
        if level == catalog.WRITE:
            condition &= Q(allow_api_write=True)
    return condition


@dataclass(frozen=True)
class _Sources:
    """The subqueries of `reaching` (hand-written: the ORM took longer to assemble them than the
    database takes to run them). Each reads only its own small tables, so it stays right however
    the users table is aliased around it; only placeholders vary."""

    overridden_to: str  # users with an override in force on the area at one of the levels
    overridden: str  # users with an override in force on the area
    via_role: str  # roles holding a role group that grants one of the levels
    via_extra: str  # users holding such a group as an extra group
    via_elevation: str  # users with such a group as an elevation in force


@functools.cache
def _sources(levels: int) -> _Sources:
    """Return the subqueries for a list of `levels` levels (their parameters, in order: the
    area, the levels, then the owner and the kind of group for `granting`; `now` last)."""
    User = get_user_model()
    q = connection.ops.quote_name
    placeholders = ", ".join(["%s"] * levels)
    override = q(PermissionOverride._meta.db_table)
    in_force = "(expires_at IS NULL OR expires_at > %s)"
    granting = (
        f"SELECT g.role_group_id FROM {q(Grant._meta.db_table)} g "  # noqa: S608
        f"JOIN {q(RoleGroup._meta.db_table)} rg ON rg.id = g.role_group_id "
        f"WHERE g.area = %s AND g.level IN ({placeholders}) AND rg.owner_id = %s AND rg.kind = %s"
    )
    roles_groups = q(Role.role_groups.through._meta.db_table)
    extra_groups = q(User.extra_role_groups.through._meta.db_table)
    requests = q(AccessRequest._meta.db_table)
    # Table names come from the models and values are parameters (hence the `noqa: S608`).
    return _Sources(
        overridden_to=f"SELECT user_id FROM {override} "  # noqa: S608
        f"WHERE area = %s AND level IN ({placeholders}) AND {in_force}",
        overridden=f"SELECT user_id FROM {override} WHERE area = %s AND {in_force}",  # noqa: S608
        via_role=f"SELECT role_id FROM {roles_groups} WHERE rolegroup_id IN ({granting})",  # noqa: S608
        via_extra=f"SELECT user_id FROM {extra_groups} WHERE rolegroup_id IN ({granting})",  # noqa: S608
        via_elevation=f"SELECT user_id FROM {requests} "  # noqa: S608
        f"WHERE role_group_id IN ({granting}) AND state = %s AND starts_at <= %s AND ends_at > %s",
    )


def _raw(sql: str, params: list) -> RawSQL:
    return RawSQL(sql, params)  # noqa: S611 (parameters only)


def who_has_access(
    owner, code: str, level: str, *, now: datetime.datetime | None = None
) -> QuerySet:
    """Return the users of `owner` whose effective level on `code` reaches `level`, by name."""
    User = get_user_model()

    users = User.objects.filter(reaching(owner, code, level, now=now))
    return users.order_by(*BY_NAME)  # the index user_owner_name


BY_NAME = ("last_name", "first_name", "pk")
# What a page of the screen shows and explains of each user (not their forty-odd columns).
SHOWN_FIELDS = (
    "owner_id",
    "username",
    "first_name",
    "last_name",
    "display_name",
    "is_superuser",
    "allow_api_write",
    "role__name",
)


# Pages of "who has access", cut by keyset on (last name, first name, id): a deep page costs
# what the first does, and no page counts every user who reaches (at 100,000 users a count alone
# is most of a page's time). The total is counted up to COUNT_CAP; beyond it, on request.
PAGE_SIZE = 50
COUNT_CAP = 1_000
_CURSOR_SALT = "roles.who_has_access.cursor"


@dataclass
class NamePage:
    """One page of users by name, and the cursors of the pages around it ("" when none)."""

    users: list
    next_cursor: str = ""
    previous_cursor: str = ""

    @property
    def has_next(self) -> bool:
        return bool(self.next_cursor)

    @property
    def has_previous(self) -> bool:
        return bool(self.previous_cursor)


def _cursor_of(user) -> str:
    return signing.dumps([user.last_name, user.first_name, user.pk], salt=_CURSOR_SALT)


def _position(token: str | None) -> tuple[str, str, int] | None:
    """Return the (last name, first name, id) signed into a cursor, or None when there is none
    or it was altered."""
    if not token:
        return None
    try:
        last, first, pk = signing.loads(token, salt=_CURSOR_SALT)
    except (signing.BadSignature, TypeError, ValueError):
        return None
    if not (isinstance(last, str) and isinstance(first, str) and isinstance(pk, int)):
        return None
    return last, first, pk


def page_by_name(
    users: QuerySet,
    *,
    after: str | None = None,
    before: str | None = None,
    size: int | None = None,
) -> NamePage:
    """Return one page of `users` in name order, after or before a cursor (one query)."""
    size = size or PAGE_SIZE
    row = Tuple(F("last_name"), F("first_name"), F("pk"))
    older, newer = _position(after), _position(before)
    if newer and not older:
        backwards = users.filter(TupleLessThan(row, newer)).order_by(*[f"-{k}" for k in BY_NAME])
        rows = list(backwards[: size + 1])
        more_before = len(rows) > size
        rows = list(reversed(rows[:size]))
        page = NamePage(rows)
        if rows:
            page.next_cursor = _cursor_of(rows[-1])
            page.previous_cursor = _cursor_of(rows[0]) if more_before else ""
        return page
    if older:
        users = users.filter(TupleGreaterThan(row, older))
    rows = list(users.order_by(*BY_NAME)[: size + 1])
    page = NamePage(rows[:size])
    if len(rows) > size:
        page.next_cursor = _cursor_of(rows[size - 1])
    if older and rows:
        page.previous_cursor = _cursor_of(rows[0])
    return page


def count_up_to(users: QuerySet, cap: int | None = None) -> tuple[int, bool]:
    """Return (count, more): the users up to `cap`, and whether there are more (the database
    stops at the first cap + 1)."""
    cap = cap or COUNT_CAP
    count = users.order_by()[: cap + 1].count()
    return min(count, cap), count > cap


@dataclass
class AccessRow:
    """One user who reaches the area: the level they hold and everything that gives it."""

    user: object
    level: str
    through: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple:
        """Every value the row of the screen shows (it is drawn once per distinct key)."""
        user = self.user
        role = user.role.name if user.role_id else None
        return (user.pk, user.label, user.username, role, self.level, tuple(self.through))


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
    # What gives the page's people a level on the area, in one query: the groups of their
    # roles, their extra groups and their elevations in force, each with the group's name and
    # the level it grants.
    granted = [lvl for lvl in area.levels if lvl != catalog.NONE]

    def giving(links: QuerySet, source: str, key: str, group: str, **details) -> QuerySet:
        """Tag the `links` (rows naming a role group by `group`) whose group grants a level on
        the area as `source`, with the linked `key`, the group's name and the level."""
        return (
            links.filter(
                **{
                    f"{group}__owner": owner,
                    f"{group}__kind": _kind_of(area),
                    f"{group}__grants__area": code,
                    f"{group}__grants__level__in": granted,
                }
            )
            .annotate(
                source=Value(source),
                key=F(key),
                name=F(f"{group}__name"),
                level=F(f"{group}__grants__level"),
                **details,
            )
            .values_list("source", "key", "name", "level", "request", "ends")
            .order_by()
        )

    # Typed: PostgreSQL takes an untyped NULL in a UNION's first branches for text.
    no_request = {
        "request": Cast(Value(None), BigIntegerField()),
        "ends": Cast(Value(None), DateTimeField()),
    }
    role_ids = {u.role_id for u in users if u.role_id}
    via_role = giving(
        Role.role_groups.through.objects.filter(role_id__in=role_ids),
        "role",
        "role_id",
        "rolegroup",
        **no_request,
    )
    via_extra = giving(
        User.extra_role_groups.through.objects.filter(user_id__in=ids),
        "extra",
        "user_id",
        "rolegroup",
        **no_request,
    )
    via_elevation = giving(
        AccessRequest.objects.active(now).filter(user_id__in=ids),
        "elevation",
        "user_id",
        "role_group",
        request=F("pk"),
        ends=F("ends_at"),
    )
    by_role: dict[int, list[tuple[str, str]]] = defaultdict(list)
    extra: dict[int, list[tuple[str, str]]] = defaultdict(list)
    elevated: dict[int, list[tuple[str, str, int, datetime.datetime]]] = defaultdict(list)
    for source, key, name, level, request_id, ends_at in via_role.union(
        via_extra, via_elevation, all=True
    ):
        if source == "role":
            by_role[key].append((name, level))
        elif source == "extra":
            extra[key].append((name, level))
        else:
            elevated[key].append((name, level, request_id, ends_at))

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
            for name, granted_level in by_role.get(user.role_id, []):
                through.append(f"Role {user.role.name} → {name} ({granted_level})")
                best = max(best, granted_level, key=area.rank)
            for name, granted_level in extra.get(user.pk, []):
                through.append(f"Extra group {name} ({granted_level})")
                best = max(best, granted_level, key=area.rank)
            for name, granted_level, request_id, ends_at in elevated.get(user.pk, []):
                through.append(
                    f"Elevation {name} ({granted_level}) until "
                    f"{ends_at:%Y-%m-%d %H:%M}, request #{request_id}"
                )
                best = max(best, granted_level, key=area.rank)
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
