"""Read the audit log: scopes, filters, keyset pages, per-user timelines and daily counts.

Every list is ordered newest first on (occurred_at, id) and paged by keyset (the last row seen),
never by OFFSET, so a deep page costs what the first page costs. Each filter combination has an
index in `audit/models.py` that starts with its equality columns and ends with
(-occurred_at, -id).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from django.core.cache import cache
from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import TruncDate
from django.utils import timezone

from .choices import AuditAction, EventCategory, category_of
from .models import AuditEvent

PAGE_SIZE = 50

# The catalog areas (roles.catalog) that open the activity screens, and that show the personal
# events of everyone of the owner: named by code, since audit imports no other app. `@requires`
# and `permissions.has` refuse a code the catalog does not know.
USER_ACTIVITY = "user_activity"
DP_USER_ACTIVITY = "dp_user_activity"


@dataclass(frozen=True)
class Scope:
    """What one viewer may read: their owner's record changes, and personal events either of
    the whole owner (with data-protection permission) or only their own.

    `owner_id=None` is the scope of events that belong to no owner (sign-in attempts with a
    login nobody has), which only platform administrators read.
    """

    owner_id: int | None
    viewer_id: int
    personal_data: bool

    def events(self, category: str | None = None) -> QuerySet[AuditEvent]:
        """Return the events of `category` (or of every category) this scope may read."""
        events = AuditEvent.objects.filter(owner_id=self.owner_id)
        if category is not None:
            events = events.filter(category=category)
            if category != EventCategory.CHANGE and not self.personal_data:
                events = events.filter(subject_user_id=self.viewer_id)
        elif not self.personal_data:
            events = events.filter(
                Q(category=EventCategory.CHANGE) | Q(subject_user_id=self.viewer_id)
            )
        return events

    def of_action(self, action: str) -> QuerySet[AuditEvent]:
        """Return the events of one action this scope may read (no category filter, so that
        the (owner, action, occurred_at, id) index answers alone)."""
        events = AuditEvent.objects.filter(owner_id=self.owner_id, action=action)
        if category_of(action) != EventCategory.CHANGE and not self.personal_data:
            events = events.filter(subject_user_id=self.viewer_id)
        return events

    @property
    def cache_key(self) -> str:
        return f"{self.owner_id}:{'all' if self.personal_data else self.viewer_id}"

    def allows(self, event: AuditEvent) -> bool:
        if event.owner_id != self.owner_id:
            return False
        return (
            self.personal_data
            or event.category == EventCategory.CHANGE
            or event.subject_user_id == self.viewer_id
        )


def scope_for(request, *, unattributed: bool | None = None) -> Scope:
    """Return what the signed-in person of `request` may read of the audit log.

    Platform administrators may also read the events of no owner (`?owner=none`): attempts to
    sign in with a login that nobody has cannot be attributed to a tenant.
    """
    personal_data = request.permissions.has(DP_USER_ACTIVITY, "read")
    if unattributed is None:
        unattributed = request.GET.get("owner") == "none"
    if unattributed and request.user.is_superuser and personal_data:
        return Scope(owner_id=None, viewer_id=request.user.pk, personal_data=True)
    return Scope(
        owner_id=request.user.owner_id, viewer_id=request.user.pk, personal_data=personal_data
    )


@dataclass
class Filters:
    """The filters of the activity screens, already validated (see `forms.ActivityFilterForm`)."""

    person_ids: list[int] | None = None  # None: no person filter; []: nobody matched
    login_ids: list[int] | None = None  # the one person asked for by login, the same way
    action: str = ""
    target: str = ""
    ip: str = ""
    since: datetime.datetime | None = None
    until: datetime.datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def apply(self, events: QuerySet[AuditEvent]) -> QuerySet[AuditEvent]:
        for ids in (self.person_ids, self.login_ids):
            if ids is not None:  # by them or about them
                events = events.filter(Q(actor_id__in=ids) | Q(subject_user_id__in=ids))
        if self.action:
            events = events.filter(action=self.action)
        if self.target:
            events = events.filter(target_label__icontains=self.target)
        if self.ip:
            events = events.filter(ip=self.ip)
        if self.since:
            events = events.filter(occurred_at__gte=self.since)
        if self.until:
            events = events.filter(occurred_at__lt=self.until)
        return events


# Keyset pagination.


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC)
_MICROSECOND = datetime.timedelta(microseconds=1)


def encode_cursor(event: AuditEvent) -> str:
    """Return the position just past `event`, as a URL-safe token.

    Microseconds are counted with integers: a float timestamp can be off by one microsecond,
    which would skip the rows that share the boundary row's time.
    """
    micros = (event.occurred_at - _EPOCH) // _MICROSECOND
    return f"{micros}-{event.pk}"


def decode_cursor(token: str | None) -> tuple[datetime.datetime, int] | None:
    """Return (occurred_at, id) of a cursor token, or None when it is absent or malformed."""
    if not token:
        return None
    try:
        micros, pk = token.split("-", 1)
        return _EPOCH + datetime.timedelta(microseconds=int(micros)), int(pk)
    except (ValueError, OverflowError, OSError):
        return None


@dataclass
class KeysetPage:
    events: list[AuditEvent]
    has_next: bool
    has_previous: bool
    next_cursor: str = ""
    previous_cursor: str = ""


def keyset_page(
    events: QuerySet[AuditEvent],
    *,
    after: str | None = None,
    before: str | None = None,
    size: int = PAGE_SIZE,
) -> KeysetPage:
    """Return one page of `events`, newest first, after (older than) or before a cursor.

    The condition `occurred_at <= t AND (occurred_at < t OR id < pk)` keeps the index range
    scan on occurred_at while breaking ties on id, so rows sharing a timestamp are neither
    skipped nor repeated.
    """
    older, newer = decode_cursor(after), decode_cursor(before)
    if newer and not older:
        when, pk = newer
        rows = list(
            events.filter(Q(occurred_at__gt=when) | Q(occurred_at=when, id__gt=pk))
            .filter(occurred_at__gte=when)
            .order_by("occurred_at", "id")[: size + 1]
        )
        has_previous = len(rows) > size
        rows = list(reversed(rows[:size]))
        has_next = True
    else:
        if older:
            when, pk = older
            events = events.filter(occurred_at__lte=when).filter(
                Q(occurred_at__lt=when) | Q(id__lt=pk)
            )
        rows = list(events.order_by("-occurred_at", "-id")[: size + 1])
        has_next = len(rows) > size
        rows = rows[:size]
        has_previous = older is not None
    page = KeysetPage(rows, has_next=has_next and bool(rows), has_previous=has_previous)
    if rows:
        page.next_cursor = encode_cursor(rows[-1])
        page.previous_cursor = encode_cursor(rows[0])
    return page


# Timelines and counts.


def timeline(
    user_id: int,
    *,
    before: datetime.datetime | None = None,
    limit: int = 50,
    personal_data: bool = True,
) -> list[AuditEvent]:
    """Return the newest events about or by one user (before a time, when given), newest first.

    Two index-backed queries (subject, actor), merged: an OR across the two columns would make
    the database read every event of the user to sort them. With `personal_data=False` only
    record changes are returned (for viewers without data-protection permission).
    """
    found: dict[int, AuditEvent] = {}
    for column in ("subject_user_id", "actor_id"):
        events = AuditEvent.objects.filter(**{column: user_id})
        if before is not None:
            events = events.filter(occurred_at__lt=before)
        if not personal_data:
            events = events.filter(category=EventCategory.CHANGE)
        for event in events.order_by("-occurred_at", "-id")[:limit]:
            found[event.pk] = event
    ordered = sorted(found.values(), key=lambda e: (e.occurred_at, e.pk), reverse=True)
    return ordered[:limit]


@dataclass(frozen=True)
class DayCount:
    day: datetime.date
    sign_ins: int
    failures: int


CHART_GENERATION_KEY = "audit:chart-generation"


def daily_sign_ins(
    scope: Scope,
    *,
    days: int = 30,
    tz: datetime.tzinfo | None = None,
    today: datetime.date | None = None,
) -> list[DayCount]:
    """Return sign-ins and failed attempts per day for the last `days` days (in `tz`).

    Counted by the database (GROUP BY day) from index-only scans of the (owner, action |
    category, occurred_at, id) indexes. Events are stamped with the time they are written and
    never change, so the counts of the days before today are final: they are cached until the
    day ends; today's up to a few minutes ago are cached until the next step (`_count_today`),
    and the minutes since are counted at most every LIVE_FOR seconds.
    """
    tz = tz or timezone.get_current_timezone()
    today = today or timezone.localdate(timezone.now(), tz)
    first = today - datetime.timedelta(days=days - 1)
    generation = cache.get(CHART_GENERATION_KEY, 0)
    key = f"audit:daily:{generation}:{scope.cache_key}:{tz}:{first}:{today}"
    past = cache.get(key)
    if past is None:
        past = _count_days(scope, tz, _midnight(first, tz), _midnight(today, tz))
        cache.set(key, past, 24 * 3600)
    current = _count_today(scope, tz, today, generation)
    return [
        DayCount(day, *(current if day == today else past).get(day, (0, 0)))
        for day in (first + datetime.timedelta(days=n) for n in range(days))
    ]


# Today is counted in two parts: up to a recent boundary (cached until the next one), and live
# after it, so that a page counts a few minutes of events rather than a whole day's (tens of
# thousands at a busy owner). The boundary trails the clock by SETTLE, so that an event
# committed a little after its time is still counted live rather than missed by the cache.
TODAY_STEP = datetime.timedelta(minutes=5)
SETTLE = datetime.timedelta(minutes=1)
# The minutes since the boundary are kept for a few seconds too: a page opened again at once
# (or by many people) counts nothing, and today's bar is at most this late.
LIVE_FOR = 10  # seconds


def _midnight(day: datetime.date, tz: datetime.tzinfo) -> datetime.datetime:
    return datetime.datetime.combine(day, datetime.time.min, tzinfo=tz)


def _count_today(
    scope: Scope, tz: datetime.tzinfo, today: datetime.date, generation: int
) -> dict[datetime.date, tuple[int, int]]:
    start = _midnight(today, tz)
    end = _midnight(today + datetime.timedelta(days=1), tz)
    trailing = timezone.now() - SETTLE
    boundary = min(max(start, trailing - (trailing - _EPOCH) % TODAY_STEP), end)
    counted = {}
    if boundary > start:
        key = f"audit:today:{generation}:{scope.cache_key}:{tz}:{today}:{boundary.timestamp()}"
        counted = cache.get(key)
        if counted is None:
            counted = _count_days(scope, tz, start, boundary)
            cache.set(key, counted, int(TODAY_STEP.total_seconds()) * 2)
    sign_ins, failures = counted.get(today, (0, 0))
    if boundary < end:
        key = f"audit:live:{generation}:{scope.cache_key}:{tz}:{today}:{boundary.timestamp()}"
        live = cache.get(key)
        if live is None:
            live = _count_days(scope, tz, boundary, end).get(today, (0, 0))
            cache.set(key, live, LIVE_FOR)
        sign_ins, failures = sign_ins + live[0], failures + live[1]
    return {today: (sign_ins, failures)}


def forget_daily_counts() -> None:
    """Drop the cached daily counts (after events were loaded with past times)."""
    try:
        cache.incr(CHART_GENERATION_KEY)
    except ValueError:
        cache.set(CHART_GENERATION_KEY, 1, None)


def _count_days(
    scope: Scope, tz: datetime.tzinfo, start: datetime.datetime, end: datetime.datetime
) -> dict[datetime.date, tuple[int, int]]:
    """Return {day: (sign-ins, failures)} for the events in [start, end), in one query."""

    def counts(events: QuerySet[AuditEvent], kind: str) -> QuerySet:
        return (
            events.filter(occurred_at__gte=start, occurred_at__lt=end)
            .annotate(day=TruncDate("occurred_at", tzinfo=tz))
            .values("day")
            .annotate(n=Count("id"), kind=Value(kind))
            .order_by()
        )

    found: dict[datetime.date, list[int]] = {}
    rows = (
        counts(scope.of_action(AuditAction.SIGN_IN), "sign_in")
        .union(counts(scope.events(EventCategory.FAILED), "failed"), all=True)
        .order_by()
    )
    for row in rows:
        found.setdefault(row["day"], [0, 0])[row["kind"] == "failed"] += row["n"]
    return {day: (sign_ins, failures) for day, (sign_ins, failures) in found.items()}
