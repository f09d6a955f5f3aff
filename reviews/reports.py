"""Governance reports, answered in SQL: dormant accounts, missing 2FA, tokens to look at,
overrides above the role, unused role groups, privileged users; and the batch loader that
snapshots many users' access in a constant number of queries.

Nothing here resolves users one by one against the database: each report is one query (or a
fixed handful), and where levels must be compared in Python (override above the role) the
inputs of every user are loaded together first.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from dataclasses import dataclass

from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from roles import catalog
from roles.choices import RequestState
from roles.models import AccessRequest, Eligibility, Grant, PermissionOverride, Role, RoleGroup
from roles.reports import who_has_access
from roles.resolver import GroupGrant, OverrideRule, Subject, resolve

DEFAULT_DORMANT_DAYS = 90
TOKEN_WARNING_DAYS = 14

_USER_FIELDS = (
    "pk",
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


def _label(row: dict) -> str:
    full = f"{row['first_name']} {row['last_name']}".strip()
    return row["display_name"] or full or row["username"]


# The batch loader ------------------------------------------------------------------------------


@dataclass
class Reach:
    """What a set of users reaches: roles' groups, extra groups, grants and overrides in force."""

    users: list[dict]
    role_names: dict[int, str]
    groups_of_role: dict[int, set[int]]
    extra_groups: dict[int, set[int]]
    group_names: dict[int, str]
    grants: dict[int, list[tuple[str, str]]]
    overrides: dict[int, list[OverrideRule]]

    def groups_of(self, row: dict) -> set[int]:
        groups = set(self.extra_groups.get(row["pk"], ()))
        if row["role_id"]:
            groups |= self.groups_of_role.get(row["role_id"], set())
        return groups

    def group_level(self, row: dict, code: str) -> str:
        """Return the best level the user's groups give on `code` (overrides and gates aside)."""
        area = catalog.BY_CODE[code]
        best = catalog.NONE
        for group_id in self.groups_of(row):
            for grant_area, level in self.grants.get(group_id, ()):
                if grant_area != code or not area.is_level(level):
                    continue
                if area.rank(level) > area.rank(best):
                    best = level
        return best

    def resolve(self, row: dict, channel: str, owner, now) -> dict[str, str]:
        """Return the user's effective {area: level} in `channel`, gates applied."""
        subject = Subject(
            allow_login=row["allow_login"],
            allow_api_read=row["allow_api_read"],
            allow_api_write=row["allow_api_write"],
            interactive=row["kind"] == "interactive",
            privilege_level=row["privilege_level"],
            data_protection_min_privilege=owner.data_protection_min_privilege,
            is_superuser=row["is_superuser"],
        )
        grants = [
            GroupGrant(group_id, self.group_names.get(group_id, ""), area, level)
            for group_id in sorted(self.groups_of(row))
            for area, level in self.grants.get(group_id, ())
        ]
        result = resolve(
            channel, subject, grants, self.overrides.get(row["pk"], ()), now=now, explain=False
        )
        return dict(result.levels)


def load_reach(users: QuerySet, *, now: datetime.datetime) -> Reach:
    """Load what resolving `users` (a queryset) needs: seven queries whatever its size."""
    from accounts.models import User

    rows = list(users.order_by("last_name", "first_name", "username").values(*_USER_FIELDS))
    user_ids = users.values("pk")
    role_ids = users.exclude(role_id=None).values("role_id")
    role_names = dict(Role.objects.filter(pk__in=role_ids).values_list("pk", "name"))
    groups_of_role: dict[int, set[int]] = defaultdict(set)
    for role_id, group_id in Role.role_groups.through.objects.filter(
        role_id__in=role_ids
    ).values_list("role_id", "rolegroup_id"):
        groups_of_role[role_id].add(group_id)
    extra_groups: dict[int, set[int]] = defaultdict(set)
    for user_id, group_id in User.extra_role_groups.through.objects.filter(
        user_id__in=user_ids
    ).values_list("user_id", "rolegroup_id"):
        extra_groups[user_id].add(group_id)
    group_ids = set().union(*groups_of_role.values(), *extra_groups.values())
    group_names = dict(RoleGroup.objects.filter(pk__in=group_ids).values_list("pk", "name"))
    grants: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for group_id, area, level in (
        Grant.objects.filter(role_group_id__in=group_ids)
        .exclude(level=catalog.NONE)
        .values_list("role_group_id", "area", "level")
    ):
        grants[group_id].append((area, level))
    overrides: dict[int, list[OverrideRule]] = defaultdict(list)
    for pk, user_id, area, level, reason, expires_at in (
        PermissionOverride.objects.in_force(now)
        .filter(user_id__in=user_ids)
        .order_by("area")
        .values_list("pk", "user_id", "area", "level", "reason", "expires_at")
    ):
        overrides[user_id].append(OverrideRule(area, level, reason, expires_at, pk))
    return Reach(rows, role_names, groups_of_role, extra_groups, group_names, grants, overrides)


@dataclass
class Eligible:
    """What a set of users may ask for: their roles' eligible groups and their own."""

    of_role: dict[int, list[dict]]
    of_user: dict[int, list[dict]]

    def of(self, row: dict, standing: set[int]) -> list[dict]:
        """Return the user's eligible groups, sorted by name, each marked `held` when the user
        also holds the group standing; a group reached both ways is listed twice (removing the
        user's own leaves the role's)."""
        entries = [*self.of_user.get(row["pk"], ())]
        if row["role_id"]:
            entries += self.of_role.get(row["role_id"], ())
        entries.sort(key=lambda e: (e["group"].lower(), e["via"] != "role"))
        return [{**e, "held": e["group_id"] in standing} for e in entries]


def load_eligibility(users: QuerySet) -> Eligible:
    """Load the eligibility of `users`: two queries whatever their number.

    An entry is {"group_id", "group", "via": "role" | "user"} with "role_id", "role" for the
    role's and "eligibility_id", "reason" for the user's own.
    """
    of_role: dict[int, list[dict]] = defaultdict(list)
    for (
        role_id,
        role_name,
        group_id,
        group_name,
    ) in Role.eligible_role_groups.through.objects.filter(
        role_id__in=users.exclude(role_id=None).values("role_id")
    ).values_list("role_id", "role__name", "rolegroup_id", "rolegroup__name"):
        of_role[role_id].append(
            {
                "group_id": group_id,
                "group": group_name,
                "via": "role",
                "role_id": role_id,
                "role": role_name,
            }
        )
    of_user: dict[int, list[dict]] = defaultdict(list)
    for pk, user_id, group_id, group_name, reason in Eligibility.objects.filter(
        user_id__in=users.values("pk")
    ).values_list("pk", "user_id", "role_group_id", "role_group__name", "reason"):
        of_user[user_id].append(
            {
                "group_id": group_id,
                "group": group_name,
                "via": "user",
                "eligibility_id": pk,
                "reason": reason,
            }
        )
    return Eligible(of_role, of_user)


def snapshots(owner, users: QuerySet, *, now: datetime.datetime) -> dict[int, dict]:
    """Return {user id: snapshot} of what each user holds at `now` (see ReviewItem.snapshot)."""
    reach = load_reach(users, now=now)
    eligible = load_eligibility(users)
    result = {}
    for row in reach.users:
        result[row["pk"]] = {
            "username": row["username"],
            "label": _label(row),
            "kind": row["kind"],
            "role": reach.role_names.get(row["role_id"]) if row["role_id"] else None,
            "role_id": row["role_id"],
            "extra_groups": sorted(
                reach.group_names.get(g, "") for g in reach.extra_groups.get(row["pk"], ())
            ),
            "overrides": [
                {
                    "id": rule.override_id,
                    "area": rule.area,
                    "label": catalog.BY_CODE[rule.area].label
                    if rule.area in catalog.BY_CODE
                    else rule.area,
                    "level": rule.level,
                    "group_level": reach.group_level(row, rule.area)
                    if rule.area in catalog.BY_CODE
                    else catalog.NONE,
                    "reason": rule.reason,
                    "expires_at": rule.expires_at.isoformat() if rule.expires_at else None,
                }
                for rule in reach.overrides.get(row["pk"], ())
            ],
            "eligible": eligible.of(row, reach.groups_of(row)),
            "application": reach.resolve(row, catalog.Channel.APPLICATION, owner, now),
            "api": reach.resolve(row, catalog.Channel.API, owner, now),
            "allow_login": row["allow_login"],
            "privilege_level": row["privilege_level"],
            "taken_at": now.isoformat(),
        }
    return result


# Standing reports ------------------------------------------------------------------------------


def dormant_accounts(owner, *, days: int = DEFAULT_DORMANT_DAYS, now=None) -> QuerySet:
    """Return the active interactive users with no sign-in for `days` days.

    A user who never signed in counts from the day the account was created.
    """
    from accounts.models import User

    since = (now or timezone.now()) - datetime.timedelta(days=days)
    return (
        User.objects.filter(owner=owner, allow_login=True, kind="interactive")
        .filter(
            Q(last_sign_in_at__lt=since) | Q(last_sign_in_at__isnull=True, created_at__lt=since)
        )
        .order_by("last_sign_in_at", "last_name", "first_name", "pk")
    )


def policy_forces_2fa(owner) -> bool:
    from security.models import PasswordPolicy

    return bool(
        PasswordPolicy.objects.filter(owner=owner).values_list("require_2fa", flat=True).first()
    )


def users_without_2fa(owner, *, forced: bool | None = None) -> QuerySet:
    """Return the active interactive local users without a confirmed 2FA device, when the
    owner's policy does not force 2FA (when it does, sign-in enforces it: nobody is listed)."""
    from accounts.models import User
    from accounts.twofactor.models import TOTPDevice

    forced = policy_forces_2fa(owner) if forced is None else forced
    users = User.objects.filter(owner=owner, allow_login=True, kind="interactive")
    if forced:
        return users.none()
    device = TOTPDevice.objects.filter(user_id=OuterRef("pk"), confirmed=True)
    return (
        users.exclude(auth_source="saml")  # the identity provider holds their second factor
        .filter(~Exists(device))
        .order_by("last_name", "first_name", "pk")
    )


def tokens_to_review(owner, *, now=None, within_days: int = TOKEN_WARNING_DAYS) -> QuerySet:
    """Return the live API tokens that expire within `within_days` days or were never used."""
    from accounts.tokens.models import ApiToken

    now = now or timezone.now()
    soon = now + datetime.timedelta(days=within_days)
    return (
        ApiToken.objects.for_owner(owner)
        .live(now)
        .filter(Q(expires_at__lte=soon) | Q(last_used_at__isnull=True))
        .select_related("user")
        .order_by("expires_at", "pk")
    )


@dataclass
class RaisingOverride:
    user_id: int
    label: str
    username: str
    role: str | None
    area: catalog.Area
    level: str
    group_level: str
    reason: str
    expires_at: datetime.datetime | None


def overrides_above_role(owner, *, now=None) -> list[RaisingOverride]:
    """Return every override in force that gives more than the user's groups give, in a fixed
    number of queries (the users with overrides are loaded together)."""
    from accounts.models import User

    now = now or timezone.now()
    with_overrides = User.objects.filter(
        owner=owner,
        pk__in=PermissionOverride.objects.in_force(now).values("user_id"),
    )
    reach = load_reach(with_overrides, now=now)
    found = []
    for row in reach.users:
        for rule in reach.overrides.get(row["pk"], ()):
            area = catalog.BY_CODE.get(rule.area)
            if area is None or not area.is_level(rule.level):
                continue
            group_level = reach.group_level(row, rule.area)
            if area.rank(rule.level) > area.rank(group_level):
                found.append(
                    RaisingOverride(
                        user_id=row["pk"],
                        label=_label(row),
                        username=row["username"],
                        role=reach.role_names.get(row["role_id"]),
                        area=area,
                        level=rule.level,
                        group_level=group_level,
                        reason=rule.reason,
                        expires_at=rule.expires_at,
                    )
                )
    return found


def unused_role_groups(owner) -> QuerySet:
    """Return the role groups that no role includes (with how many users hold them as extras)."""
    in_a_role = Role.role_groups.through.objects.filter(rolegroup_id=OuterRef("pk"))
    return (
        RoleGroup.objects.filter(owner=owner)
        .filter(~Exists(in_a_role))
        .annotate(extra_user_count=Count("extra_users", distinct=True))
        .order_by("name", "pk")
    )


PRIVILEGED_AREAS = (*(area.code for area in catalog.AREAS if area.is_data_protection),)


def privileged_users(owner, *, now=None) -> QuerySet:
    """Return the users reaching any data-protection area, or full on Users, in one query.

    Each user carries one boolean annotation per privilege (`p_<area>`), for the report's
    columns.
    """
    from accounts.models import User

    now = now or timezone.now()
    checks = {
        **{
            f"p_{code}": who_has_access(owner, code, catalog.READ, now=now)
            for code in PRIVILEGED_AREAS
        },
        f"p_{catalog.USERS}": who_has_access(owner, catalog.USERS, catalog.FULL, now=now),
    }
    users = User.objects.filter(owner=owner).annotate(
        **{name: Exists(qs.filter(pk=OuterRef("pk"))) for name, qs in checks.items()}
    )
    anyone = Q()
    for name in checks:
        anyone |= Q(**{name: True})
    return users.filter(anyone).select_related("role").order_by("last_name", "first_name", "pk")


def privileged_columns() -> list[tuple[str, str]]:
    """Return (annotation, label) of the privileged users report's columns."""
    columns = [(f"p_{catalog.USERS}", "Users (full)")]
    columns += [(f"p_{code}", catalog.BY_CODE[code].label) for code in PRIVILEGED_AREAS]
    return columns


@dataclass(frozen=True)
class Counts:
    dormant: int
    without_2fa: int
    tokens: int
    overrides: int
    unused_groups: int
    privileged: int
    forced_2fa: bool
    active_elevations: int = 0
    waiting_requests: int = 0


def counts(owner, *, now=None, dormant_days: int = DEFAULT_DORMANT_DAYS) -> Counts:
    """Return the number of rows of every standing report (for the dashboard)."""
    now = now or timezone.now()
    forced = policy_forces_2fa(owner)
    return Counts(
        dormant=dormant_accounts(owner, days=dormant_days, now=now).count(),
        without_2fa=users_without_2fa(owner, forced=forced).count(),
        tokens=tokens_to_review(owner, now=now).count(),
        overrides=len(overrides_above_role(owner, now=now)),
        unused_groups=unused_role_groups(owner).count(),
        privileged=privileged_users(owner, now=now).count(),
        forced_2fa=forced,
        active_elevations=AccessRequest.objects.for_owner(owner).active(now).count(),
        waiting_requests=AccessRequest.objects.for_owner(owner)
        .filter(state=RequestState.PENDING, requested_ends_at__gt=now)
        .count(),
    )
