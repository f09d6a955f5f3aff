"""Just-in-time access at the bench's size (issue 18's goals): the queries per request that
elevations cost, counted, never timed.

Three users of the same role: one with no eligibility at all (the baseline), one eligible for a
group with an elevation that ended yesterday but none in force ("no active elevation"), and one
with an elevation in force. For each, the permission middleware's queries on a cache hit and on
a miss (both caches emptied), the first lookup after the elevation's end (the cached entry
expires then), and a whole home page in-process (session, user, menu) against the baseline's.
Goals: no active elevation costs 0 extra queries per request; the miss path with elevations
stays within the 2 queries every miss takes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable

from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import F
from django.test import RequestFactory
from django.utils import timezone

from accounts.models import User
from portal.access import requires
from roles import catalog, permissions
from roles.choices import RequestState
from roles.middleware import PermissionMiddleware
from roles.models import AccessRequest, Eligibility, Grant, RoleGroup

from . import seed
from .counting import QueryTimer

GROUP = "Bench elevation: Users full"


def _queries(call: Callable[[], object]) -> int:
    counter = QueryTimer()
    with connection.execute_wrapper(counter):
        call()
    return counter.count


def _empty_caches() -> None:
    cache.clear()
    permissions.local_entries.clear()


@transaction.atomic
def seed_users(owner) -> dict[str, User]:
    """Return the three users (created once), their elevations reset around now."""
    group, created = RoleGroup.objects.get_or_create(owner=owner, name=GROUP)
    if created:
        Grant.objects.create(role_group=group, area=catalog.USERS, level=catalog.FULL)
    role_id = (
        User.objects.filter(owner=owner, role__isnull=False).values_list("role_id", flat=True)
    ).first()
    users = {}
    for kind in ("baseline", "idle", "active"):
        username = f"{owner.slug}-jit-{kind}"
        user = User.objects.filter(username=username).first()
        if user is None:
            user = User.objects.create_user(
                username, f"{username}@{owner.slug}.example", seed.BENCH_PASSWORD, owner=owner
            )
            User.objects.filter(pk=user.pk).update(role_id=role_id, privilege_level=5)
        if kind != "baseline":
            Eligibility.objects.get_or_create(
                owner=owner, user=user, role_group=group, defaults={"reason": "Bench"}
            )
        users[kind] = user
    # Rows as the services leave them; written directly so each run starts from the same state.
    now = timezone.now()
    AccessRequest.objects.filter(user__in=users.values()).delete()
    windows = {
        "idle": (now - datetime.timedelta(days=1), now - datetime.timedelta(hours=20)),
        "active": (now - datetime.timedelta(hours=1), now + datetime.timedelta(hours=7)),
    }
    for kind, (starts_at, ends_at) in windows.items():
        AccessRequest.objects.create(
            owner=owner,
            user=users[kind],
            role_group=group,
            starts_at=starts_at,
            ends_at=ends_at,
            requested_ends_at=ends_at,
            justification="Bench elevation",
            state=RequestState.APPROVED,
            decided_at=starts_at,
            activation_recorded_at=starts_at,
            created_at=starts_at,
        )
    # As the services do: a new version, so no entry cached by an earlier run is read.
    User.objects.filter(pk__in=[u.pk for u in users.values()]).update(
        permissions_version=F("permissions_version") + 1
    )
    return {
        kind: User.objects.select_related("owner").get(pk=user.pk) for kind, user in users.items()
    }


def _middleware_queries(user) -> dict[str, int]:
    factory = RequestFactory()
    middleware = PermissionMiddleware(lambda request: None)
    view = requires(catalog.USERS, catalog.READ)(lambda request: None)

    def one_request():
        request = factory.get("/")
        request.user = user
        middleware(request)
        middleware.process_view(request, view, (), {})

    _empty_caches()
    miss = _queries(one_request)
    hit = _queries(one_request)
    return {"miss": miss, "hit": hit}


def measure(owner, *, page_queries: Callable[[User], int]) -> dict:
    """Return the query counts of the three users (see the module's docstring);
    `page_queries(user)` counts the queries of the home page for a signed-in user, warmed."""
    users = seed_users(owner)
    rows = {kind: _middleware_queries(user) for kind, user in users.items()}
    active = users["active"]
    ends_at = AccessRequest.objects.filter(user=active).values_list("ends_at", flat=True).get()
    _empty_caches()
    permissions.for_user(active)  # cached now, with the elevation's end as its expiry
    after_end = ends_at + datetime.timedelta(seconds=1)
    rows["active"]["after_end"] = _queries(lambda: permissions.for_user(active, now=after_end))
    rows["active"]["after_end_again"] = _queries(
        lambda: permissions.for_user(active, now=after_end)
    )
    for kind, user in users.items():
        rows[kind]["page"] = page_queries(user)
    base = rows["baseline"]
    return {
        "users": rows,
        "extra_no_active_hit": rows["idle"]["hit"] - base["hit"],
        "extra_no_active_page": rows["idle"]["page"] - base["page"],
        "miss_with_elevation": rows["active"]["miss"],
    }
