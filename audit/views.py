"""Activity screens: the audit log by tab, one event in full, the CSV export.

Who sees what (one rule, applied to lists, the chart, the detail page and the export):

- `User Activity` read opens the screens and shows the owner's record changes, plus the
  viewer's own sign-ins, failed attempts, security events and sensitive views;
- adding `Data protection: User Activity` read shows those personal events for everyone of the
  owner: sign-in history with addresses, places and devices is personal data.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import get_language
from django.views.decorators.http import require_GET

from portal.access import requires
from portal.navigation import path_for
from portal.templatetags.navigation import remembered

from . import charts, display, queries, services
from . import export as csv_export
from .choices import EventCategory
from .forms import ActivityFilterForm
from .models import AuditEvent
from .queries import USER_ACTIVITY, scope_for


@dataclass(frozen=True)
class Tab:
    slug: str
    label: str
    category: str | None
    personal: bool  # holds personal data (needs data-protection permission owner-wide)
    chart: bool = False


TABS = [
    Tab("sign-ins", "Sign-ins", EventCategory.SIGN_IN, True, chart=True),
    Tab("failed", "Failed attempts", EventCategory.FAILED, True, chart=True),
    Tab("changes", "Record changes", EventCategory.CHANGE, False),
    Tab("security", "Security events", EventCategory.SECURITY, True),
    Tab("views", "Sensitive views", EventCategory.VIEW, True),
    Tab("all", "All events", None, True),
]
TABS_BY_SLUG = {tab.slug: tab for tab in TABS}
DEFAULT_TAB = "sign-ins"


def tab_or_404(slug: str) -> Tab:
    try:
        return TABS_BY_SLUG[slug]
    except KeyError:
        raise Http404("No such activity tab.") from None


@dataclass(slots=True)
class Drawn:
    """An event whose row is already drawn in this process: its key is all the page needs."""

    pk: int
    row_key: tuple


class People:
    """The owner's users, as the activity filters find them (`owner` None: the events of no
    owner, whose people are nobody's)."""

    def __init__(self, owner):
        self.owner = owner
        self.person = None  # the user `named` found: (login, label)

    def matching(self, text: str) -> list[int]:
        """Return the ids of the users the users list's search finds for `text` (every word
        in a name, the username or the email), at most 100; kept until the owner's people
        change, so paging and narrowing a filtered log searches the users once."""
        if self.owner is None:
            return []
        return get_user_model().objects.ids_matching(self.owner, text)

    def named(self, login: str) -> list[int]:
        """Return the id of the one user whose login is `login` (any case), or none."""
        found = get_user_model().objects.named(self.owner, login) if self.owner else None
        if found is None:
            return []
        pk, username, label = found
        self.person = (username, label)
        return [pk]


def filtered_events(request, tab: Tab, scope: queries.Scope):
    """Return (form, queryset, people) for the tab and the filters in the query string."""
    form = ActivityFilterForm(request.GET or None, category=tab.category)
    events = scope.events(tab.category)
    people = People(request.user.owner if scope.owner_id is not None else None)
    if form.is_bound:
        if not form.is_valid():
            return form, events.none(), people
        events = form.filters(people).apply(events)
    return form, events, people


def _query_without(request, *names: str) -> str:
    params = request.GET.copy()
    for name in names:
        params.pop(name, None)
    return params.urlencode()


@require_GET
@requires(USER_ACTIVITY, "read")
def activity(request, tab: str = DEFAULT_TAB):
    """Show one tab of the activity log, filtered, one keyset page at a time."""
    current = tab_or_404(tab)
    scope = scope_for(request)
    form, events, people = filtered_events(request, current, scope)
    # The page's positions first; then, in full, only the events whose rows are not drawn yet
    # in this process (events never change, so a drawn row is theirs for good).
    page = queries.keyset_page(
        events.values_list("pk", "occurred_at", named=True),
        after=request.GET.get("after"),
        before=request.GET.get("before"),
    )
    zone = timezone.get_current_timezone_name()
    language = getattr(request, "LANGUAGE_CODE", None) or get_language() or settings.LANGUAGE_CODE
    page.events = [Drawn(row.pk, (row.pk, current.slug, zone)) for row in page.events]
    missing = [e.pk for e in page.events if not remembered("activity row", e.row_key, language)]
    if missing:
        full = AuditEvent.objects.in_bulk(missing)
        for pk, event in full.items():
            event.row_key = (pk, current.slug, zone)
        page.events = [full.get(e.pk, e) for e in page.events]
        display.decorate([full[pk] for pk in missing if pk in full])
    base = _query_without(request, "after", "before")
    joiner = f"?{base}&" if base else "?"
    page.next_url = f"{joiner}after={page.next_cursor}" if page.has_next else ""
    page.previous_url = f"{joiner}before={page.previous_cursor}" if page.has_previous else ""
    chart = None
    if current.chart:
        chart = charts.sign_in_chart(queries.daily_sign_ins(scope))
    keep = _query_without(request, "after", "before", "action")
    tabs = [
        (_tab_url(request, t.slug) + (f"?{keep}" if keep else ""), t.label, t.slug == current.slug)
        for t in TABS
    ]
    return render(
        request,
        "audit/activity.html",
        {
            "tab": current,
            "tabs": tabs,
            "form": form,
            "page": page,
            "events": page.events,
            "chart": chart,
            "personal_data": scope.personal_data,
            "export_url": path_for(request, "audit:export", current.slug)
            + (f"?{base}" if base else ""),
            "filtered": bool(base),
            "form_key": _form_key(current, form),
            "person": people.person,
            "person_asked": form.is_bound and form.is_valid() and form.cleaned_data["person"],
            "without_person": _query_without(request, "after", "before", "person"),
            "unattributed": scope.owner_id is None,
            "can_see_unattributed": request.user.is_superuser and scope.personal_data,
        },
    )


def _form_key(tab: Tab, form) -> tuple | None:
    """Return what the filter fields show when it is all they show (blank, or valid: no error
    messages), else None."""
    if not form.is_bound:
        return (tab.slug,)
    if form.is_valid():
        return (tab.slug, *(form.data.get(name, "") for name in form.fields))
    return None


def _tab_url(request, slug: str) -> str:
    if slug == DEFAULT_TAB:
        return path_for(request, "audit:activity")
    return path_for(request, "audit:activity_tab", slug)


@require_GET
@requires(USER_ACTIVITY, "read")
def event_detail(request, pk: int):
    """Show one event with everything it holds, its chain position and hashes included."""
    event = AuditEvent.objects.filter(pk=pk).first()
    if event is None or not scope_for(request, unattributed=event.owner_id is None).allows(event):
        raise Http404("No such event.")
    display.decorate([event])
    tab = next((t for t in TABS if t.category == event.category), TABS[-1])
    return render(
        request,
        "audit/event_detail.html",
        {
            "event": event,
            "tab": tab,
            "back_url": _tab_url(request, tab.slug),
            "context_items": sorted((event.context or {}).items()),
        },
    )


@require_GET
@requires(USER_ACTIVITY, "read")
def export(request, tab: str):
    """Stream the filtered events of a tab as CSV; the export itself is recorded first."""
    current = tab_or_404(tab)
    scope = scope_for(request)
    form, events, _people = filtered_events(request, current, scope)
    services.record_export(
        request.user,
        filters=form.active(),
        scope=f"{current.label}, {'whole owner' if scope.personal_data else 'own events'}",
    )
    tz = timezone.get_current_timezone()
    stamp = timezone.localtime(timezone.now(), tz).strftime("%Y%m%d-%H%M")
    response = StreamingHttpResponse(csv_export.rows(events, tz), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="activity-{current.slug}-{stamp}.csv"'
    response["Cache-Control"] = "no-store"
    return response
