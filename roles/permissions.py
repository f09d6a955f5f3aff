"""Load a user's effective permissions from the database, cached without staleness.

The cache key holds the user's `permissions_version` and the owner's `authz_epoch`, both read
from the rows that authentication loads anyway: any change that can move a user's permissions
bumps one of them in the same transaction, so an entry for old versions is never read again, on
any process. A hit costs no query; a miss costs two (grants with elevations, overrides).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from threading import Lock

from django.conf import settings
from django.core.cache import cache
from django.db.models import (
    BooleanField,
    DateTimeField,
    Exists,
    F,
    IntegerField,
    OuterRef,
    Q,
    Value,
)
from django.utils import timezone

from . import catalog
from .choices import RoleGroupKind
from .models import AccessRequest, Grant, PermissionOverride, Role
from .resolver import EffectivePermissions, GroupGrant, OverrideRule, Subject, resolve

_KIND_OF_CHANNEL = {
    catalog.Channel.APPLICATION: RoleGroupKind.APPLICATION,
    catalog.Channel.API: RoleGroupKind.API,
}


def cache_key(user, channel: str) -> str:
    return (
        f"perm:{catalog.CATALOG_VERSION}:{user.pk}:{user.permissions_version}:"
        f"{user.owner.authz_epoch}:{channel}"
    )


def subject_of(user) -> Subject:
    """Return the gate facts of a user (its owner must already be loaded)."""
    return Subject(
        allow_login=user.allow_login,
        allow_api_read=user.allow_api_read,
        allow_api_write=user.allow_api_write,
        interactive=user.kind == "interactive",
        privilege_level=user.privilege_level,
        data_protection_min_privilege=user.owner.data_protection_min_privilege,
        is_superuser=user.is_superuser,
    )


def _reached_groups(user) -> Q:
    through_user = user.extra_role_groups.through
    reach = Q(role_group_id__in=through_user.objects.filter(user_id=user.pk).values("rolegroup_id"))
    if user.role_id is not None:
        through_role = Role.role_groups.through
        reach |= Q(
            role_group_id__in=through_role.objects.filter(role_id=user.role_id).values(
                "rolegroup_id"
            )
        )
    return reach


_NO_TIME = Value(None, output_field=DateTimeField())


def _elevation_grants(user, channel: str, now, *, area: str | None = None):
    """Return the grants of the user's elevations in force or still to start, as rows of
    (group id, group name, area, level, via role, starts at, ends at, request id)."""
    # Unordered: a part of a UNION may not carry the model's ORDER BY (SQLite refuses it).
    rows = (
        AccessRequest.objects.not_over(now)
        .order_by()
        .filter(user_id=user.pk, role_group__kind=_KIND_OF_CHANNEL[channel])
    )
    rows = rows.filter(role_group__grants__isnull=False)  # "none" is never stored as a grant
    if area is not None:
        rows = rows.filter(role_group__grants__area=area)
    return rows.values_list(
        "role_group_id",
        "role_group__name",
        "role_group__grants__area",
        "role_group__grants__level",
        Value(False, output_field=BooleanField()),
        "starts_at",
        "ends_at",
        "pk",
    )


def grant_levels_of(user, channel: str, *, now=None) -> list[GroupGrant]:
    """Return the distinct (area, level) pairs the user reaches in `channel`, in one query.

    The per-request path needs levels only, so the database folds the grants of every reached
    group into at most (areas x levels) rows, whatever the number of groups; elevations in
    force or still to start come in the same query with their windows.
    """
    now = now or timezone.now()
    standing = (
        Grant.objects.filter(_reached_groups(user), role_group__kind=_KIND_OF_CHANNEL[channel])
        .exclude(level=catalog.NONE)
        .values_list("area", "level", _NO_TIME, _NO_TIME)
    )
    elevated = (
        AccessRequest.objects.not_over(now)
        .order_by()  # a part of a UNION may not carry the model's ORDER BY (SQLite refuses it)
        .filter(user_id=user.pk, role_group__kind=_KIND_OF_CHANNEL[channel])
        .filter(role_group__grants__isnull=False)
        .exclude(role_group__grants__level=catalog.NONE)
        .values_list(
            "role_group__grants__area", "role_group__grants__level", "starts_at", "ends_at"
        )
    )
    return [
        GroupGrant(0, "", area, level, starts_at=starts_at, ends_at=ends_at)
        for area, level, starts_at, ends_at in standing.union(elevated)
    ]


def grants_of(user, channel: str, *, area: str | None = None, now=None) -> list[GroupGrant]:
    """Return every grant the user reaches in `channel` with its group, in one query.

    With `area`, only that area's grants (areas resolve independently of one another). Grants
    of elevations in force or still to start come with their windows.
    """
    now = now or timezone.now()
    through_user = user.extra_role_groups.through
    reach = Q(role_group_id__in=through_user.objects.filter(user_id=user.pk).values("rolegroup_id"))
    via_role: Exists | Value = Value(False, output_field=BooleanField())
    if user.role_id is not None:
        through_role = Role.role_groups.through
        in_role = through_role.objects.filter(
            role_id=user.role_id, rolegroup_id=OuterRef("role_group_id")
        )
        reach |= Q(
            role_group_id__in=through_role.objects.filter(role_id=user.role_id).values(
                "rolegroup_id"
            )
        )
        via_role = Exists(in_role)
    rows = (
        Grant.objects.filter(reach, role_group__kind=_KIND_OF_CHANNEL[channel])
        .exclude(level=catalog.NONE)
        .annotate(group_name=F("role_group__name"))
    )
    if area is not None:
        rows = rows.filter(area=area)
    standing = rows.annotate(via_role=via_role).values_list(
        "role_group_id",
        "group_name",
        "area",
        "level",
        "via_role",
        _NO_TIME,
        _NO_TIME,
        Value(None, output_field=IntegerField()),
    )
    elevated = _elevation_grants(user, channel, now, area=area)
    return [
        GroupGrant(group, name, code, level, bool(by_role), starts_at, ends_at, request_id)
        for group, name, code, level, by_role, starts_at, ends_at, request_id in standing.union(
            elevated, all=True
        )
    ]


def overrides_of(user, now, *, area: str | None = None) -> list[OverrideRule]:
    """Return the user's overrides that are in force at `now` (of one area), in one query."""
    rows = PermissionOverride.objects.in_force(now).filter(user_id=user.pk)
    if area is not None:
        rows = rows.filter(area=area)
    return [
        OverrideRule(code, level, reason, expires_at, pk)
        for pk, code, level, reason, expires_at in rows.values_list(
            "pk", "area", "level", "reason", "expires_at"
        )
    ]


def compute(
    user, channel: str, *, now=None, role_name: str = "", explain: bool = True
) -> EffectivePermissions:
    """Resolve a user's permissions from the database, bypassing the cache (two queries)."""
    now = now or timezone.now()
    subject = subject_of(user)
    if role_name:
        subject = Subject(**{**subject.__dict__, "role_name": role_name})
    grants = (
        grants_of(user, channel, now=now) if explain else grant_levels_of(user, channel, now=now)
    )
    return resolve(channel, subject, grants, overrides_of(user, now), now=now, explain=explain)


class _LocalEntries:
    """A small per-process LRU in front of the shared cache.

    Keys carry the database versions, so an entry is never stale; this only saves the shared
    cache's round trip and unpickling on the hot path.
    """

    def __init__(self, size: int = 4096):
        self.size = size
        self.entries: OrderedDict[str, EffectivePermissions] = OrderedDict()
        self.lock = Lock()

    def get(self, key: str) -> EffectivePermissions | None:
        with self.lock:
            entry = self.entries.get(key)
            if entry is not None:
                self.entries.move_to_end(key)
            return entry

    def put(self, key: str, entry: EffectivePermissions) -> None:
        with self.lock:
            self.entries[key] = entry
            self.entries.move_to_end(key)
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)

    def clear(self) -> None:
        with self.lock:
            self.entries.clear()


local_entries = _LocalEntries()

# Told the outcome of every lookup: "local" (this process), "shared" (CACHE_URL) or "miss" (the
# database). The metrics register here (ops), so roles imports nothing of them; an observer runs
# on every request and must stay cheap.
_lookup_observers: list[Callable[[str], None]] = []


def observe_lookups(observer: Callable[[str], None]) -> None:
    """Call `observer(outcome)` after every lookup of `for_user`."""
    if observer not in _lookup_observers:
        _lookup_observers.append(observer)


def for_user(user, channel: str = catalog.Channel.APPLICATION, *, now=None) -> EffectivePermissions:
    """Return a user's effective permissions in `channel`, from the cache when still exact.

    Lookup order: this process's LRU, the shared cache (CACHE_URL), then the database. Entries
    hold levels only; explanations come from `explained()`.
    """
    if user is None or not getattr(user, "is_authenticated", False):
        return EffectivePermissions(channel=channel)
    now = now or timezone.now()
    key = cache_key(user, channel)
    entry = local_entries.get(key)
    if entry is not None and entry.is_fresh(now):
        for observe in _lookup_observers:
            observe("local")
        return entry
    entry = cache.get(key)
    outcome = "shared"
    if entry is None or not entry.is_fresh(now):
        entry = compute(user, channel, now=now, explain=False)
        cache.set(key, entry, settings.PERMISSION_CACHE_SECONDS)
        outcome = "miss"
    local_entries.put(key, entry)
    for observe in _lookup_observers:
        observe(outcome)
    return entry


def explain_area(user, code: str, *, now=None):
    """Return the decision (level and reasons) of one area for a user, in at most 3 queries.

    The same resolver as every screen, fed only that area's grants and overrides: areas resolve
    independently, so the answer equals `explained(user).explain(code)`.
    """
    now = now or timezone.now()
    channel = catalog.get(code).channel
    subject = subject_of(user)
    role_name = user.role.name if user.role_id else ""
    subject = Subject(**{**subject.__dict__, "role_name": role_name})
    result = resolve(
        channel,
        subject,
        grants_of(user, channel, area=code, now=now),
        overrides_of(user, now, area=code),
        now=now,
    )
    return result.explain(code)


def explained(user, channel: str = catalog.Channel.APPLICATION) -> EffectivePermissions:
    """Return permissions with role names in the explanations (for the screens, not cached)."""
    role_name = user.role.name if user.role_id else ""
    return compute(user, channel, role_name=role_name)
