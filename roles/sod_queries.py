"""The SQL behind separation of duties at scale (PostgreSQL).

Two questions must stay fast at 100,000 users and 50 rules:

- *Who violates which rule now* (the report, the rule list, the dashboard tile, review badges).
  Each distinct (area, minimum level) named by a rule is a *pair*, numbered `k` and evaluated
  once: which role groups reach it (grants), hence which roles. Users whose access comes only
  from their role (no extra groups, elevations, overrides or exceptions) are counted as
  *classes* (role, platform administrator, data-protection gate); the others, one by one, from
  the same pairs. A rule is then two array tests (`@>` for "all of", `&&` for "any of") per
  class or person, in SQL: never a loop over users. The rules themselves are read inside the
  query, so one statement answers.
- *What a change would do* (`change_inputs`): the owner's rules, the users a proposal reaches,
  grouped in SQL by everything their levels depend on (the people of a reached role with nothing
  of their own are counted from the index `user_owner_role_gates` alone), and the grants those
  groups need, restricted to the areas that rules name: one statement, whose few rows
  `roles.sod` resolves in memory.

The SQL text names tables from the models' metadata and nothing else: every value is a query
parameter (hence the `noqa: S608`).

The same rule as `roles.resolver` throughout: an override in force decides its area; else the
best level of the application groups reached (role, extra groups, elevations in force), a
platform administrator holding every top level; then the gates (Login flag and interactive,
privilege level for data-protection areas). `tests/roles/test_sod_queries.py` holds these
answers against the resolver's on varied data.
"""

from __future__ import annotations

import datetime
import json
import re
from dataclasses import dataclass, field
from functools import cache

from django.contrib.auth import get_user_model
from django.db import connection

from . import catalog
from .choices import RequestState, RoleGroupKind
from .models import AccessRequest, Grant, PermissionOverride, Role, RoleGroup, SodException, SodRule

# People named in a refusal per group of alike users; the rest are counted.
NAMED_PER_GROUP = 10


def is_supported() -> bool:
    """Say whether the database runs this module's SQL (PostgreSQL; SQLite takes the portable
    path of `roles.sod`)."""
    return connection.vendor == "postgresql"


@cache
def _levels() -> tuple[list[str], list[str], list[int], list[bool]]:
    """Return the catalog's application levels as four parallel arrays (area, level, rank,
    data protection): the order of levels, which SQL cannot know."""
    rows = [
        (area.code, level, area.rank(level), area.is_data_protection)
        for area in catalog.areas_for(catalog.Channel.APPLICATION)
        for level in area.levels
    ]
    return tuple(list(column) for column in zip(*rows, strict=True))  # type: ignore[return-value]


class _Params:
    """Parameters named as the SQL is written (reusable, in any order), then turned into
    positional ones by `compile` (what RawSQL and the cursor take)."""

    def __init__(self):
        self.named: dict[str, object] = {}

    def __call__(self, value, cast: str = "") -> str:
        name = f"p{len(self.named)}"
        self.named[name] = value
        return f"%({name})s{cast}"

    def compile(self, sql: str) -> tuple[str, list]:
        values = []

        def positional(match: re.Match) -> str:
            values.append(self.named[match.group(1)])
            return "%s"

        return _NAMED.sub(positional, sql), values


_NAMED = re.compile(r"%\((p\d+)\)s")


def _tables() -> dict[str, str]:
    User = get_user_model()
    return {
        "user": User._meta.db_table,
        "extra": User.extra_role_groups.through._meta.db_table,
        "role_groups": Role.role_groups.through._meta.db_table,
        "grant": Grant._meta.db_table,
        "group": RoleGroup._meta.db_table,
        "override": PermissionOverride._meta.db_table,
        "request": AccessRequest._meta.db_table,
        "rule": SodRule._meta.db_table,
        "exception": SodException._meta.db_table,
    }


def _label(u: str) -> str:
    return (
        f"coalesce(nullif({u}.display_name, ''), "
        f"nullif(trim({u}.first_name || ' ' || {u}.last_name), ''), {u}.username)"
    )


# Who violates which rule -------------------------------------------------------------------------


def _violation_ctes(
    p: _Params,
    owner,
    now: datetime.datetime,
    *,
    rule_ids: list[int] | None = None,
    effect: str | None = None,
    user_ids: list[int] | None = None,
) -> str:
    """Return the WITH clause ending in `hit` (rule_id, user_id, ck, n): each class of plain
    users (user_id null, class key ck, n people) or person (user_id) holding both sides of a
    rule, and `special` (the people counted one by one), `rule_hit` (per rule: the classes and
    people that violate it) and `exc` (exceptions in force).

    With `user_ids`, only those people are looked at, each one by one.
    """
    t = _tables()
    areas, levels, ranks, dps = _levels()
    rule_filter = ""
    if rule_ids is not None:
        rule_filter += f" AND r.id = ANY({p(list(rule_ids), '::int[]')})"
    if effect is not None:
        rule_filter += f" AND r.effect = {p(effect)}"
    owner_id = p(owner.pk)
    dp_min = p(owner.data_protection_min_privilege)
    at = p(now)
    if user_ids is None:
        special = """
    SELECT user_id FROM own UNION SELECT user_id FROM ovr UNION SELECT user_id FROM exc"""
    else:
        special = f"SELECT unnest({p(list(user_ids), '::int[]')}) AS user_id"
    classes = " AND false" if user_ids is not None else ""
    return f"""
WITH lv AS MATERIALIZED (
    SELECT * FROM unnest({p(areas, "::text[]")}, {p(levels, "::text[]")}, {p(ranks, "::int[]")},
                         {p(dps, "::bool[]")}) AS lv(area, level, rank, dp)
), rl AS (
    SELECT r.id, r.name, r.left_join, r.right_join, r."left", r."right"
    FROM {t["rule"]} r WHERE r.owner_id = {owner_id}{rule_filter}
), side AS (
    SELECT rl.id AS rule_id, s.side, e.value ->> 0 AS area, e.value ->> 1 AS level
    FROM rl
    CROSS JOIN LATERAL (VALUES ('l', rl."left"), ('r', rl."right")) AS s(side, items)
    CROSS JOIN LATERAL jsonb_array_elements(s.items) AS e
), pair AS MATERIALIZED (
    SELECT (row_number() OVER (ORDER BY d.area, d.level))::int AS k, d.area, d.level,
           lv.rank, lv.dp
    FROM (SELECT DISTINCT area, level FROM side) d
    JOIN lv ON lv.area = d.area AND lv.level = d.level
), rule AS MATERIALIZED (
    SELECT rl.id AS rule_id,
           array_agg(pair.k) FILTER (WHERE side.side = 'l') AS lks,
           array_agg(pair.k) FILTER (WHERE side.side = 'r') AS rks,
           rl.left_join = 'all' AS lall, rl.right_join = 'all' AS rall
    FROM rl
    JOIN side ON side.rule_id = rl.id
    JOIN pair ON pair.area = side.area AND pair.level = side.level
    GROUP BY rl.id, rl.left_join, rl.right_join
), grp AS MATERIALIZED (
    SELECT DISTINCT g.role_group_id AS gid, pair.k
    FROM {t["grant"]} g
    JOIN {t["group"]} rg ON rg.id = g.role_group_id
    JOIN lv ON lv.area = g.area AND lv.level = g.level
    JOIN pair ON pair.area = g.area AND lv.rank >= pair.rank
    WHERE rg.owner_id = {owner_id} AND rg.kind = {p(RoleGroupKind.APPLICATION)}
), role_k AS MATERIALIZED (
    SELECT rr.role_id, array_agg(DISTINCT grp.k) AS ks
    FROM {t["role_groups"]} rr JOIN grp ON grp.gid = rr.rolegroup_id
    GROUP BY rr.role_id
), own AS MATERIALIZED (
    SELECT e.user_id, grp.k FROM {t["extra"]} e JOIN grp ON grp.gid = e.rolegroup_id
    UNION
    SELECT a.user_id, grp.k FROM {t["request"]} a JOIN grp ON grp.gid = a.role_group_id
    WHERE a.state = {p(RequestState.APPROVED)} AND a.starts_at <= {at} AND a.ends_at > {at}
), ovr AS MATERIALIZED (
    SELECT o.user_id, pair.k, coalesce(lv.rank >= pair.rank, false) AS reaches
    FROM {t["override"]} o
    JOIN pair ON pair.area = o.area
    LEFT JOIN lv ON lv.area = o.area AND lv.level = o.level
    WHERE o.expires_at IS NULL OR o.expires_at > {at}
), exc AS MATERIALIZED (
    SELECT DISTINCT x.rule_id, x.user_id FROM {t["exception"]} x
    WHERE x.owner_id = {owner_id} AND x.revoked_at IS NULL AND x.expires_at > {at}
), special AS MATERIALIZED ({special}
), person AS MATERIALIZED (
    SELECT u.id, u.role_id, u.is_superuser AS su,
           (u.is_superuser OR u.privilege_level >= {dp_min}) AS dp_ok
    FROM {t["user"]} u
    WHERE u.id IN (SELECT user_id FROM special)
      AND u.owner_id = {owner_id} AND u.allow_login AND u.kind = 'interactive'
), person_k AS (
    (SELECT h.id AS user_id, unnest(role_k.ks) AS k
     FROM person h JOIN role_k ON role_k.role_id = h.role_id
     UNION
     SELECT h.id, pair.k FROM person h CROSS JOIN pair WHERE h.su
     UNION
     SELECT own.user_id, own.k FROM own JOIN person h ON h.id = own.user_id
     EXCEPT
     SELECT ovr.user_id, ovr.k FROM ovr)
    UNION
    SELECT ovr.user_id, ovr.k FROM ovr JOIN person h ON h.id = ovr.user_id WHERE ovr.reaches
), held AS MATERIALIZED (
    SELECT h.id AS user_id, 0 AS ck, 1 AS n, array_agg(pk.k) AS ks
    FROM person h
    JOIN person_k pk ON pk.user_id = h.id
    JOIN pair ON pair.k = pk.k
    WHERE h.dp_ok OR NOT pair.dp
    GROUP BY h.id
    UNION ALL
    SELECT NULL, c.ck, c.n,
           ARRAY(SELECT pair.k FROM pair
                 WHERE (c.su OR pair.k = ANY(role_k.ks)) AND (c.dp_ok OR NOT pair.dp))
    FROM (
        SELECT u.role_id, u.is_superuser AS su,
               (u.is_superuser OR u.privilege_level >= {dp_min}) AS dp_ok,
               {_class_key("u", p, owner)} AS ck,
               count(*)::int AS n
        FROM {t["user"]} u
        WHERE u.owner_id = {owner_id} AND u.allow_login AND u.kind = 'interactive'
          AND NOT EXISTS (SELECT 1 FROM special s WHERE s.user_id = u.id){classes}
        GROUP BY 1, 2, 3, 4
    ) c
    LEFT JOIN role_k ON role_k.role_id = c.role_id
), hit AS MATERIALIZED (
    SELECT rule.rule_id, held.user_id, held.ck, held.n
    FROM held JOIN rule ON
        (CASE WHEN rule.lall THEN held.ks @> rule.lks ELSE held.ks && rule.lks END)
        AND (CASE WHEN rule.rall THEN held.ks @> rule.rks ELSE held.ks && rule.rks END)
), rule_hit AS (
    SELECT hit.rule_id,
           coalesce(array_agg(hit.ck) FILTER (WHERE hit.user_id IS NULL), '{{}}') AS cks,
           coalesce(array_agg(hit.user_id) FILTER (WHERE hit.user_id IS NOT NULL), '{{}}') AS uids
    FROM hit GROUP BY hit.rule_id
)"""  # noqa: S608


def _class_key(u: str, p: _Params, owner) -> str:
    dp_min = p(owner.data_protection_min_privilege)
    return (
        f"(coalesce({u}.role_id, 0) * 4 + {u}.is_superuser::int * 2"
        f" + ({u}.is_superuser OR {u}.privilege_level >= {dp_min})::int)"
    )


@dataclass
class Figures:
    """How many people violate a rule now, and how many of them an exception covers."""

    total: int = 0
    covered: int = 0

    @property
    def uncovered(self) -> int:
        return self.total - self.covered


def figures(owner, *, now: datetime.datetime, rule_ids=None) -> dict[int, Figures]:
    """Return {rule id: Figures} for the owner's rules (those violated by nobody are absent),
    in one query."""
    p = _Params()
    sql = f"""{_violation_ctes(p, owner, now, rule_ids=rule_ids)}
SELECT hit.rule_id, sum(hit.n)::int, count(exc.user_id)::int
FROM hit LEFT JOIN exc ON exc.rule_id = hit.rule_id AND exc.user_id = hit.user_id
GROUP BY hit.rule_id"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(*p.compile(sql))
        return {rule_id: Figures(total, covered) for rule_id, total, covered in cursor.fetchall()}


def violator_ids_sql(owner, rule_id: int, *, now: datetime.datetime) -> tuple[str, list]:
    """Return (sql, params) selecting the ids of the people violating one rule now (for a
    queryset's `pk__in=RawSQL(...)`)."""
    t = _tables()
    p = _Params()
    ctes = _violation_ctes(p, owner, now, rule_ids=[rule_id])
    owner_id = p(owner.pk)
    key = _class_key("u", p, owner)
    sql = f"""{ctes}
SELECT u.id FROM {t["user"]} u, rule_hit
WHERE u.owner_id = {owner_id} AND u.allow_login AND u.kind = 'interactive'
  AND (u.id = ANY(rule_hit.uids)
       OR ({key} = ANY(rule_hit.cks)
           AND NOT EXISTS (SELECT 1 FROM special s WHERE s.user_id = u.id)))"""  # noqa: S608
    return p.compile(sql)


# A rule broken by at most this many people has its first ones found from its violators (by
# role, then sorted); a rule broken by more, by walking the name index until enough are found.
FEW = 2000


def first_violators(
    owner, *, now: datetime.datetime, limit: int, totals: dict[int, int]
) -> dict[int, list[int]]:
    """Return {rule id: the ids of the first `limit` people violating it, by name}, in one
    query. `totals` ({rule id: how many violate it}, from `figures`) picks the way for each
    rule: for a rule many break, the name index is walked and stops at `limit`; for a rule
    few break, its violators are read through their role (never the whole owner) and sorted.
    """
    t = _tables()
    p = _Params()
    ctes = _violation_ctes(p, owner, now)
    owner_id = p(owner.pk)
    key = _class_key("u", p, owner)
    few = p(sorted(r for r, n in totals.items() if 0 < n <= FEW), "::int[]")
    many = p(sorted(r for r, n in totals.items() if n > FEW), "::int[]")
    gates = f"u.owner_id = {owner_id} AND u.allow_login AND u.kind = 'interactive'"
    plain = "NOT EXISTS (SELECT 1 FROM special s WHERE s.user_id = u.id)"
    sql = f"""{ctes}, few AS MATERIALIZED (
    SELECT rule_hit.rule_id, v.id, v.last_name, v.first_name
    FROM rule_hit CROSS JOIN LATERAL (
        SELECT u.id, u.last_name, u.first_name FROM {t["user"]} u
        WHERE u.id = ANY(rule_hit.uids) AND {gates}
        UNION
        SELECT u.id, u.last_name, u.first_name
        FROM unnest(rule_hit.cks) AS ck
        JOIN {t["user"]} u ON u.owner_id = {owner_id}
             AND (u.role_id = ck / 4 OR (ck / 4 = 0 AND u.role_id IS NULL))
        WHERE {key} = ck AND {gates} AND {plain}
    ) v
    WHERE rule_hit.rule_id = ANY({few})
)
SELECT rule_id, id, last_name, first_name FROM (
    SELECT rule_id, id, last_name, first_name, row_number() OVER (
        PARTITION BY rule_id ORDER BY last_name, first_name, id) AS n
    FROM few
) ranked WHERE n <= {p(limit)}
UNION ALL
SELECT rule_hit.rule_id, first.id, first.last_name, first.first_name
FROM rule_hit CROSS JOIN LATERAL (
    SELECT u.id, u.last_name, u.first_name FROM {t["user"]} u
    WHERE {gates}
      AND (u.id = ANY(rule_hit.uids)
           OR (EXISTS (SELECT 1 FROM unnest(rule_hit.cks) AS ck WHERE ck = {key}) AND {plain}))
    ORDER BY u.last_name, u.first_name, u.id
    LIMIT {p(limit)}
) first
WHERE rule_hit.rule_id = ANY({many})
ORDER BY 1, 3, 4, 2"""  # noqa: S608
    found: dict[int, list[int]] = {}
    with connection.cursor() as cursor:
        cursor.execute(*p.compile(sql))
        for rule_id, user_id, _, _ in cursor.fetchall():
            found.setdefault(rule_id, []).append(user_id)
    return found


def rules_violated_by(
    owner, user_ids, *, now: datetime.datetime, effect: str | None = None
) -> dict[int, list[tuple[int, str]]]:
    """Return {user id: [(rule id, rule name), ...] by name} for the rules some people (a page
    of them) violate now, in one query that reads the rules too; `effect` keeps the rules of
    that effect only."""
    user_ids = list(user_ids)
    if not user_ids:
        return {}
    p = _Params()
    sql = f"""{_violation_ctes(p, owner, now, effect=effect, user_ids=user_ids)}
SELECT hit.user_id, rl.id, rl.name FROM hit JOIN rl ON rl.id = hit.rule_id
WHERE hit.user_id IS NOT NULL ORDER BY hit.user_id, rl.name, rl.id"""  # noqa: S608
    found: dict[int, list[tuple[int, str]]] = {}
    with connection.cursor() as cursor:
        cursor.execute(*p.compile(sql))
        for user_id, rule_id, name in cursor.fetchall():
            found.setdefault(user_id, []).append((rule_id, name))
    return found


# What a change would do ------------------------------------------------------------------------


@dataclass(frozen=True)
class Alike:
    """Users a proposal reaches whose levels depend on the same things: they resolve alike.

    `named` is set for a user the proposal names (their role, groups or overrides change).
    `overrides` maps each rule area to the level an override in force sets; `excepted` lists
    the rules an exception in force lets them break. `ids` and `labels` are the first people
    (oldest accounts first); `count` is all of them.
    """

    role_id: int | None
    dp_ok: bool
    superuser: bool
    named: int | None
    extras: frozenset[int]
    elevations: frozenset[int]
    overrides: dict[str, str]
    excepted: frozenset[int]
    count: int
    ids: list[int]
    labels: list[str]


@dataclass
class ChangeInputs:
    """What resolving a proposal's reach needs: the owner's rules (as the JSON text of their
    rows, which also keys a cache of them compiled), the alike groups of users, the groups of
    the roles involved, and the cells of the groups involved on the rules' areas."""

    rules_text: str = "[]"
    alike: list[Alike] = field(default_factory=list)
    groups_of_role: dict[int, set[int]] = field(default_factory=dict)
    cells: dict[int, dict[str, str]] = field(default_factory=dict)


def _json(value):
    return json.loads(value) if isinstance(value, str | bytes) else value


def change_inputs(
    owner,
    *,
    cells: list[tuple[int, str]],
    replaced: set[int],
    recomposed_roles: set[int],
    named_users: set[int],
    override_cells: list[tuple[int, str]],
    roles_after: set[int],
    groups_proposed: set[int],
    now: datetime.datetime,
) -> ChangeInputs:
    """Return, in one query, the owner's rules and the users a proposal reaches, grouped as
    `Alike`, with the role compositions and the grants that resolving them needs.

    Only what the rules read counts: `cells` ((group, area) set by the proposal) and
    `override_cells` ((user, area)) reach nobody unless a rule names the area; `replaced`
    groups lose their other cells. The rules are read by the same statement, so that checking
    a change costs this one query.
    """
    t = _tables()
    p = _Params()
    owner_id = p(owner.pk)
    at = p(now)
    approved = p(RequestState.APPROVED)
    dp_ok = f"(u.is_superuser OR u.privilege_level >= {p(owner.data_protection_min_privilege)})"
    gates = f"u.owner_id = {owner_id} AND u.allow_login AND u.kind = 'interactive'"
    in_force = f"a.state = {approved} AND a.starts_at <= {at} AND a.ends_at > {at}"
    rule_area = "IN (SELECT area FROM ra)"
    sql = f"""
WITH rl AS MATERIALIZED (
    SELECT r.id, r.name, r.description, r."left", r.left_join, r."right", r.right_join, r.effect
    FROM {t["rule"]} r WHERE r.owner_id = {owner_id}
), ra AS MATERIALIZED (
    SELECT DISTINCT e.value ->> 0 AS area
    FROM rl CROSS JOIN LATERAL jsonb_array_elements(rl."left" || rl."right") AS e
), changed AS MATERIALIZED (
    SELECT c.gid FROM unnest({p([g for g, _ in cells], "::int[]")},
                             {p([a for _, a in cells], "::text[]")}) AS c(gid, area)
    WHERE c.area {rule_area}
    UNION SELECT g FROM unnest({p(sorted(replaced), "::int[]")}) AS g
    WHERE EXISTS (SELECT 1 FROM ra)
), named AS MATERIALIZED (
    SELECT n AS id FROM unnest({p(sorted(named_users), "::int[]")}) AS n
    WHERE EXISTS (SELECT 1 FROM ra)
    UNION SELECT o.uid FROM unnest({p([u for u, _ in override_cells], "::int[]")},
                                   {p([a for _, a in override_cells], "::text[]")}) AS o(uid, area)
    WHERE o.area {rule_area}
), reached_role AS MATERIALIZED (
    SELECT rr.role_id FROM {t["role_groups"]} rr WHERE rr.rolegroup_id IN (SELECT gid FROM changed)
    UNION SELECT r FROM unnest({p(sorted(recomposed_roles), "::int[]")}) AS r
    WHERE EXISTS (SELECT 1 FROM ra)
), reached AS MATERIALIZED (
    SELECT u.id FROM {t["user"]} u
    WHERE u.owner_id = {owner_id} AND u.role_id = ANY(ARRAY(SELECT role_id FROM reached_role))
), one AS MATERIALIZED (
    SELECT id FROM named
    UNION SELECT e.user_id FROM {t["extra"]} e WHERE e.rolegroup_id IN (SELECT gid FROM changed)
    UNION SELECT a.user_id FROM {t["request"]} a
          WHERE a.role_group_id IN (SELECT gid FROM changed) AND {in_force}
    UNION SELECT e.user_id FROM {t["extra"]} e JOIN reached r ON r.id = e.user_id
    UNION SELECT a.user_id FROM {t["request"]} a JOIN reached r ON r.id = a.user_id
          WHERE {in_force}
    UNION SELECT o.user_id FROM {t["override"]} o JOIN reached r ON r.id = o.user_id
          WHERE o.area {rule_area} AND (o.expires_at IS NULL OR o.expires_at > {at})
    UNION SELECT x.user_id FROM {t["exception"]} x JOIN reached r ON r.id = x.user_id
          WHERE x.revoked_at IS NULL AND x.expires_at > {at}
), person AS (
    SELECT u.id, u.role_id, u.is_superuser, {dp_ok} AS dp_ok,
           CASE WHEN u.id IN (SELECT id FROM named) THEN u.id END AS named,
           coalesce((SELECT array_agg(e.rolegroup_id ORDER BY e.rolegroup_id)
                     FROM {t["extra"]} e WHERE e.user_id = u.id), '{{}}') AS extras,
           coalesce((SELECT array_agg(DISTINCT a.role_group_id) FROM {t["request"]} a
                     WHERE a.user_id = u.id AND {in_force}), '{{}}') AS elevations,
           coalesce((SELECT jsonb_object_agg(o.area, o.level) FROM {t["override"]} o
                     WHERE o.user_id = u.id AND o.area {rule_area}
                       AND (o.expires_at IS NULL OR o.expires_at > {at})), '{{}}') AS overrides,
           coalesce((SELECT array_agg(DISTINCT x.rule_id) FROM {t["exception"]} x
                     WHERE x.user_id = u.id AND x.revoked_at IS NULL AND x.expires_at > {at}),
                    '{{}}') AS excepted
    FROM {t["user"]} u
    WHERE u.id IN (SELECT id FROM one) AND {gates}
), alike AS MATERIALIZED (
    SELECT role_id, dp_ok, is_superuser AS su, named, extras, elevations, overrides, excepted,
           count(*)::int AS n, (array_agg(id ORDER BY id))[1:{NAMED_PER_GROUP}] AS ids
    FROM person GROUP BY 1, 2, 3, 4, 5, 6, 7, 8
    UNION ALL
    SELECT c.role_id, c.dp_ok, c.su, NULL, '{{}}', '{{}}', '{{}}'::jsonb, '{{}}', c.n,
           ARRAY(SELECT u.id FROM {t["user"]} u
                 WHERE u.role_id = c.role_id AND u.is_superuser = c.su AND {dp_ok} = c.dp_ok
                   AND {gates} AND NOT EXISTS (SELECT 1 FROM one WHERE one.id = u.id)
                 ORDER BY u.id LIMIT {NAMED_PER_GROUP})
    FROM (
        -- Everyone else of the reached roles, counted by class from the index alone; each
        -- class's first people are then read in id order, a few index entries each.
        SELECT u.role_id, {dp_ok} AS dp_ok, u.is_superuser AS su, count(*)::int AS n
        FROM {t["user"]} u
        WHERE u.role_id = ANY(ARRAY(SELECT role_id FROM reached_role)) AND {gates}
          AND NOT EXISTS (SELECT 1 FROM one WHERE one.id = u.id)
        GROUP BY 1, 2, 3
    ) c
), involved_role AS (
    SELECT role_id FROM alike WHERE role_id IS NOT NULL
    UNION SELECT unnest({p(sorted(roles_after | recomposed_roles), "::int[]")})
), composition AS (
    SELECT rr.role_id, rr.rolegroup_id FROM {t["role_groups"]} rr
    WHERE rr.role_id IN (SELECT role_id FROM involved_role)
), involved_group AS (
    SELECT rolegroup_id AS gid FROM composition
    UNION SELECT unnest(extras) FROM alike
    UNION SELECT unnest(elevations) FROM alike
    UNION SELECT unnest({p(sorted(groups_proposed), "::int[]")})
)
SELECT
    (SELECT coalesce(json_agg(rl ORDER BY rl.name, rl.id), '[]')::text FROM rl),
    (SELECT coalesce(json_agg(json_build_array(
         role_id, dp_ok, su, named, extras, elevations, overrides, excepted, n, ids,
         ARRAY(SELECT {_label("u")} FROM {t["user"]} u WHERE u.id = ANY(alike.ids) ORDER BY u.id)
     )), '[]') FROM alike),
    (SELECT coalesce(json_agg(json_build_array(role_id, rolegroup_id)), '[]') FROM composition),
    (SELECT coalesce(json_agg(json_build_array(g.role_group_id, g.area, g.level)), '[]')
     FROM {t["grant"]} g JOIN {t["group"]} rg ON rg.id = g.role_group_id
     WHERE g.role_group_id = ANY(ARRAY(SELECT gid FROM involved_group)) AND g.area {rule_area}
       AND rg.owner_id = {owner_id} AND rg.kind = {p(RoleGroupKind.APPLICATION)})"""  # noqa: S608
    with connection.cursor() as cursor:
        cursor.execute(*p.compile(sql))
        rules_text, alike_rows, composition, grants = cursor.fetchone()
    found = ChangeInputs(rules_text=rules_text)
    for (
        role_id,
        dp_ok_,
        su,
        named_id,
        extras,
        elevations,
        overrides,
        excepted,
        n,
        ids,
        labels,
    ) in _json(alike_rows):
        found.alike.append(
            Alike(
                role_id,
                dp_ok_,
                su,
                named_id,
                frozenset(extras),
                frozenset(elevations),
                dict(overrides),
                frozenset(excepted),
                n,
                list(ids),
                list(labels),
            )
        )
    for role_id, group_id in _json(composition):
        found.groups_of_role.setdefault(role_id, set()).add(group_id)
    for group_id, area, level in _json(grants):
        found.cells.setdefault(group_id, {})[area] = level
    return found
