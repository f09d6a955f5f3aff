"""Activity screens: access, every event kind with its fields, filters, paging, export, chart."""

import csv
import datetime
import html
import io
import re
import zoneinfo

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from audit import queries
from audit.choices import AuditAction
from audit.models import AuditEvent
from audit.services import record_view
from roles import catalog
from tests.access_helpers import assert_screen_access
from tests.audit.helpers import UK_ADDRESS, record_at
from tests.builders import make_owner, make_user

pytestmark = pytest.mark.django_db

ACTIVITY = reverse("audit:activity")


def tab_url(slug):
    return reverse("audit:activity_tab", args=[slug])


def export_url(slug):
    return reverse("audit:export", args=[slug])


def csv_rows(response):
    assert isinstance(response, StreamingHttpResponse)
    text = b"".join(response.streaming_content).decode()
    return list(csv.DictReader(io.StringIO(text)))


def test_the_areas_audit_names_by_code_are_the_catalog_areas():
    """audit imports no other app, so it names its areas by code; the catalog must know them."""
    assert catalog.get(queries.USER_ACTIVITY).code == catalog.USER_ACTIVITY
    assert catalog.get(queries.DP_USER_ACTIVITY).code == catalog.DP_USER_ACTIVITY


@pytest.fixture
def reviewer(owner):
    """Holds User Activity read, not the data-protection area."""
    return make_user(owner, username="reviewer", grants={catalog.USER_ACTIVITY: catalog.READ})


@pytest.fixture
def person(owner):
    return make_user(owner, username="sam.support", first_name="Sam", last_name="Support")


@pytest.fixture
def every_kind(owner, admin_user, person):
    """One event of each kind, about `person`, written by the services' usual calls."""
    now = timezone.now()
    return {
        "sign_in": record_at(
            now - datetime.timedelta(minutes=50),
            AuditAction.SIGN_IN,
            actor=person,
            target=person,
            method="password",
            context={"second_factor": "totp"},
        ),
        "failed": record_at(
            now - datetime.timedelta(minutes=40),
            AuditAction.SIGN_IN_FAILED,
            actor_label="sam.support",
            target=person,
            owner=owner,
            subject_user=person,
            reason="Wrong password",
            method="password",
            context={"reason": "wrong_password", "login": "sam.support"},
            ip="45.155.205.10",
            user_agent="python-requests/2.32.3",
        ),
        "change": record_at(
            now - datetime.timedelta(minutes=30),
            AuditAction.USER_CHANGED,
            actor=admin_user,
            target=person,
            changes={"allow_login": [True, False], "privilege_level": [3, 5]},
            reason="Leaver",
            details="Left the company on Friday.",
        ),
        "security": record_at(
            now - datetime.timedelta(minutes=20),
            AuditAction.PASSWORD_CHANGED,
            actor=person,
            target=person,
            ip="10.1.2.3",
        ),
        "view": record_at(
            now - datetime.timedelta(minutes=10),
            AuditAction.SENSITIVE_VIEWED,
            actor=admin_user,
            target=person,
            details="Security tab",
            ip="127.0.0.1",
        ),
    }


# Access.

URLS = [
    ACTIVITY,
    tab_url("changes"),
    tab_url("all"),
    export_url("changes"),
]


def test_the_screens_need_user_activity_read(owner, reviewer, signed_in):
    nobody = make_user(owner, grants={catalog.USERS: catalog.READ})
    assert_screen_access(signed_in, URLS, allowed=reviewer, denied=nobody)


def test_event_detail_access(owner, admin_user, signed_in, every_kind):
    url = reverse("audit:event_detail", args=[every_kind["change"].pk])
    nobody = make_user(owner, grants={catalog.USERS: catalog.READ})
    assert_screen_access(signed_in, [url], allowed=admin_user, denied=nobody)


def test_unknown_tab_is_not_found(admin_user, signed_in):
    assert signed_in(admin_user).get(tab_url("nonsense")).status_code == 404


def test_another_owners_event_is_not_found(admin_user, signed_in):
    stranger = make_user(make_owner())
    event = record_at(None, AuditAction.USER_CHANGED, actor=stranger, target=stranger)
    url = reverse("audit:event_detail", args=[event.pk])
    assert signed_in(admin_user).get(url).status_code == 404


def test_the_menu_offers_activity_only_to_those_who_may_open_it(owner, reviewer, signed_in):
    assert ACTIVITY in signed_in(reviewer).get(reverse("home")).content.decode()
    nobody = make_user(owner, grants={catalog.USERS: catalog.READ})
    assert ACTIVITY not in signed_in(nobody).get(reverse("home")).content.decode()


# The rule for personal data.


def test_without_data_protection_permission_personal_events_are_only_ones_own(
    reviewer, person, signed_in, every_kind
):
    own = record_at(None, AuditAction.SIGN_IN, actor=reviewer, target=reviewer, method="password")
    client = signed_in(reviewer)
    events = client.get(ACTIVITY).context["events"]
    assert [e.pk for e in events] == [own.pk]
    assert "only your own events" in client.get(ACTIVITY).content.decode()
    assert [e.pk for e in client.get(tab_url("changes")).context["events"]] == [
        every_kind["change"].pk
    ]
    assert {e.pk for e in client.get(tab_url("all")).context["events"]} == {
        own.pk,
        every_kind["change"].pk,
    }
    sign_in = reverse("audit:event_detail", args=[every_kind["sign_in"].pk])
    assert client.get(sign_in).status_code == 404
    rows = csv_rows(client.get(export_url("all")))
    exported = AuditEvent.objects.get(action=AuditAction.AUDIT_EXPORTED)  # recorded first
    assert {r["Event id"] for r in rows} == {
        str(own.pk),
        str(every_kind["change"].pk),
        str(exported.pk),
    }


def test_with_data_protection_permission_everyone_is_shown(owner, signed_in, every_kind):
    dp = make_user(
        owner,
        grants={catalog.USER_ACTIVITY: catalog.READ, catalog.DP_USER_ACTIVITY: catalog.READ},
        privilege_level=6,
    )
    events = signed_in(dp).get(tab_url("all")).context["events"]
    assert {e.pk for e in events} == {e.pk for e in every_kind.values()}


# Every kind of event, with its fields, in the viewer and in the export.


def test_sign_in_history_shows_time_in_viewer_zone_ip_place_device_method_and_2fa(
    admin_user, signed_in, every_kind
):
    admin_user.time_zone = "Asia/Tokyo"
    admin_user.save()
    event = every_kind["sign_in"]
    html = signed_in(admin_user).get(ACTIVITY).content.decode()
    tokyo = event.occurred_at.astimezone(zoneinfo.ZoneInfo("Asia/Tokyo"))
    assert tokyo.strftime("%H:%M:%S") in html
    for text in (
        "Sam Support",
        "Signed in",
        UK_ADDRESS,
        "United Kingdom",
        "Firefox 133 on Windows",
        "Password",
        "Authenticator app",
    ):
        assert text in html, text


def test_failed_attempts_show_the_reason(admin_user, signed_in, every_kind):
    html = signed_in(admin_user).get(tab_url("failed")).content.decode()
    for text in ("sam.support", "Wrong password", "45.155.205.10", "Python 2"):
        assert text in html, text
    assert "Signed in" not in html


def test_record_changes_read_as_before_and_after_with_field_labels(
    admin_user, signed_in, every_kind
):
    html = signed_in(admin_user).get(tab_url("changes")).content.decode()
    assert "User changed" in html
    assert "Leaver" in html
    # allow_login is labelled "Login" on the user model; booleans read Yes/No.
    assert ">Login</dt>" in html
    assert 'aria-label="before">Yes</del>' in html
    assert 'aria-label="after">No</ins>' in html
    assert ">Privilege level</dt>" in html


def test_security_events_and_sensitive_views_have_their_tabs(admin_user, signed_in, every_kind):
    client = signed_in(admin_user)
    security = client.get(tab_url("security")).content.decode()
    assert "Password changed" in security and "10.1.2.3" in security
    views = client.get(tab_url("views")).content.decode()
    assert "Sensitive record viewed" in views and "Security tab" in views


def test_event_detail_shows_everything_including_the_chain(admin_user, signed_in, every_kind):
    event = every_kind["sign_in"]
    html = signed_in(admin_user).get(reverse("audit:event_detail", args=[event.pk])).content
    html = html.decode()
    for text in (event.hash, event.prev_hash, str(event.seq), "req-0123456789", "United Kingdom"):
        assert text in html, text


def test_the_export_holds_every_kind_with_its_fields_and_is_audited(
    admin_user, signed_in, every_kind
):
    response = signed_in(admin_user).get(export_url("all"))
    assert response["Content-Type"] == "text/csv"
    assert "attachment" in response["Content-Disposition"]
    exported = AuditEvent.objects.filter(action=AuditAction.AUDIT_EXPORTED).get()
    assert exported.actor_id == admin_user.pk
    rows = {row["Event id"]: row for row in csv_rows(response)}
    assert set(rows) == {str(e.pk) for e in [*every_kind.values(), exported]}
    sign_in = rows[str(every_kind["sign_in"].pk)]
    assert sign_in["Event"] == "Signed in"
    assert sign_in["IP address"] == UK_ADDRESS
    assert sign_in["Location"] == "United Kingdom"
    assert sign_in["Device"] == "Firefox 133 on Windows"
    assert sign_in["Second factor"] == "Authenticator app"
    assert sign_in["Hash"] == every_kind["sign_in"].hash
    failed = rows[str(every_kind["failed"].pk)]
    assert (failed["Reason"], failed["By"]) == ("Wrong password", "sam.support")
    change = rows[str(every_kind["change"].pk)]
    assert "Login: Yes → No" in change["Changes"]
    assert "Privilege level: 3 → 5" in change["Changes"]
    assert rows[str(every_kind["view"].pk)]["Location"] == "This machine"
    assert rows[str(every_kind["security"].pk)]["Location"] == "Private network"


def test_the_export_follows_the_filters_and_records_them(admin_user, signed_in, every_kind):
    response = signed_in(admin_user).get(export_url("all") + "?ip=45.155.205.10")
    rows = csv_rows(response)
    assert [r["Event id"] for r in rows] == [str(every_kind["failed"].pk)]  # not the export
    exported = AuditEvent.objects.get(action=AuditAction.AUDIT_EXPORTED)
    assert exported.context["filters"] == {"ip": "45.155.205.10"}


def test_the_export_defuses_spreadsheet_formulas(owner, admin_user, signed_in):
    record_at(
        None,
        AuditAction.SIGN_IN_FAILED,
        owner=owner,
        actor_label='=HYPERLINK("http://evil")',
        reason="No user with this login",
    )
    rows = csv_rows(signed_in(admin_user).get(export_url("failed")))
    assert rows[0]["By"].startswith("'=")


# Filters.


def ids(response):
    return [e.pk for e in response.context["events"]]


def test_filter_by_person_matches_actor_or_subject(admin_user, person, signed_in, every_kind):
    client = signed_in(admin_user)
    by_sam = set(ids(client.get(tab_url("all") + "?q=Sam")))
    assert by_sam == {e.pk for e in every_kind.values()}  # all are about Sam
    by_admin = set(ids(client.get(tab_url("all") + "?q=admin")))
    assert by_admin == {every_kind["change"].pk, every_kind["view"].pk}
    assert ids(client.get(tab_url("all") + "?q=nobody-like-this")) == []


def test_a_person_added_after_a_search_is_found_by_the_same_search(
    owner, admin_user, signed_in, every_kind
):
    client = signed_in(admin_user)
    assert ids(client.get(tab_url("all") + "?q=robin")) == []  # kept: nobody is called Robin
    robin = make_user(owner, username="robin")
    event = record_at(None, AuditAction.SIGN_IN, actor=robin, target=robin)
    assert ids(client.get(tab_url("all") + "?q=robin")) == [event.pk]


def test_filter_by_one_person_is_exact_and_kept_while_other_filters_change(
    owner, admin_user, person, signed_in, every_kind
):
    namesake = make_user(owner, username="sam.supportive", first_name="Samuel")
    theirs = record_at(None, AuditAction.SIGN_IN, actor=namesake, target=namesake)
    client = signed_in(admin_user)
    assert theirs.pk in ids(client.get(tab_url("all") + "?q=sam.support"))  # the search finds both
    page = client.get(tab_url("all") + "?person=SAM.support")  # one login, any case
    assert set(ids(page)) == {e.pk for e in every_kind.values()}
    text = page.content.decode()
    assert "Only the activity of <strong>Sam Support</strong> (login sam.support)." in text
    assert '<input type="hidden" name="person" value="SAM.support"' in text  # kept by Filter
    assert f'href="{tab_url("all")}">Show everyone</a>' in text
    both = client.get(tab_url("all") + "?person=sam.support&q=admin")
    assert set(ids(both)) == {every_kind["change"].pk, every_kind["view"].pk}
    narrowed = client.get(tab_url("all") + "?person=sam.support&action=user_changed")
    assert ids(narrowed) == [every_kind["change"].pk]
    assert f'href="{tab_url("all")}?action=user_changed">Show everyone</a>' in (
        narrowed.content.decode()
    )


def test_filter_by_a_login_nobody_has_shows_nothing_and_says_so(
    owner, admin_user, person, signed_in, every_kind
):
    stranger = make_user(make_owner("elsewhere"), username="outsider")
    record_at(None, AuditAction.SIGN_IN, actor=stranger, target=stranger)
    client = signed_in(admin_user)
    for login in ("nobody", "outsider"):  # another owner's login is nobody's here
        page = client.get(tab_url("all") + f"?person={login}")
        assert page.status_code == 200
        assert ids(page) == []
        assert f"No user has the login “{login}”." in page.content.decode()


def test_the_user_records_link_shows_that_persons_activity(
    owner, admin_user, person, signed_in, every_kind
):
    other = make_user(owner, username="sam.supportive")
    theirs = record_at(None, AuditAction.SIGN_IN, actor=other, target=other)
    client = signed_in(admin_user)
    record = client.get(reverse("accounts:user_activity", args=[person.pk])).content.decode()
    link = re.search(r'<a href="([^"]+)">See all of this person', record).group(1)
    shown = set(ids(client.get(html.unescape(link))))
    # Every event about Sam (opening Sam's record was one more), none about the namesake.
    assert shown > {e.pk for e in every_kind.values()}
    assert theirs.pk not in shown


@pytest.mark.parametrize(
    ("path", "queries"),
    [
        # Session, user; the page. The chart's counts were read by the first request (today's
        # last minutes are kept for LIVE_FOR seconds), and so were the people matching (kept
        # until the owner's people change).
        (ACTIVITY + "?q=sam.support", 3),
        # Session, user; the page (the person with that login was read by the first request).
        (ACTIVITY + "?person=sam.support", 3),
        # Session, user; the page (the failed tab has the chart too).
        (reverse("audit:activity_tab", args=["failed"]) + "?action=sign_in_failed", 3),
        (ACTIVITY + "?since={today}&until={today}", 3),
    ],
)
def test_filtered_pages_make_a_fixed_number_of_queries(
    path, queries, admin_user, person, signed_in, django_assert_num_queries
):
    client = signed_in(admin_user)
    path = path.format(today=timezone.localdate().isoformat())
    client.get(path)  # warm the permission cache and the chart's cached days
    for _ in range(30):
        record_at(None, AuditAction.SIGN_IN, actor=person, target=person)
        record_at(None, AuditAction.SIGN_IN_FAILED, owner=person.owner, actor_label="sam.support")
    # The new events' rows are not drawn yet: one more query reads them in full ...
    with django_assert_num_queries(queries + 1):
        assert client.get(path).status_code == 200
    # ... and once drawn, the page reads only their positions.
    with django_assert_num_queries(queries):
        assert client.get(path).status_code == 200


def test_rows_drawn_once_are_drawn_again_in_another_time_zone(admin_user, person, signed_in):
    """Rows are kept once drawn (events never change), but per time zone: the times differ."""
    when = datetime.datetime(2026, 11, 20, 23, 30, tzinfo=datetime.UTC)
    record_at(when, AuditAction.SIGN_IN, actor=person, target=person)
    client = signed_in(admin_user)
    first = client.get(tab_url("all")).content.decode()
    assert "20 Nov 2026" in first and "23:30:00" in first
    admin_user.time_zone = "Asia/Tokyo"
    admin_user.save(update_fields=["time_zone"])
    later = client.get(tab_url("all")).content.decode()
    assert "21 Nov 2026" in later and "08:30:00" in later and "23:30:00" not in later


def test_filter_by_type_target_ip_and_days(owner, admin_user, person, signed_in, every_kind):
    client = signed_in(admin_user)
    assert ids(client.get(tab_url("all") + "?action=password_changed")) == [
        every_kind["security"].pk
    ]
    other = make_user(owner, first_name="Zed", last_name="Zulu")
    renamed = record_at(None, AuditAction.USER_CHANGED, actor=admin_user, target=other)
    assert ids(client.get(tab_url("changes") + "?target=zulu")) == [renamed.pk]
    assert ids(client.get(tab_url("all") + "?ip=10.1.2.3")) == [every_kind["security"].pk]
    today = timezone.localdate()
    old = record_at(
        timezone.now() - datetime.timedelta(days=10),
        AuditAction.SIGN_IN,
        actor=person,
        target=person,
    )
    since = (today - datetime.timedelta(days=11)).isoformat()
    until = (today - datetime.timedelta(days=9)).isoformat()
    assert ids(client.get(f"{ACTIVITY}?since={since}&until={until}")) == [old.pk]


def test_bad_filters_are_explained_not_a_crash(admin_user, signed_in, every_kind):
    response = signed_in(admin_user).get(
        ACTIVITY + "?ip=999.1.1.1&since=2026-05-02&until=2026-05-01"
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "Enter a valid IPv4 or IPv6 address." in html
    assert "Choose a day on or after the From day." in html
    assert response.context["events"] == []


# Keyset pagination.


def test_keyset_pages_walk_ties_without_skipping_or_repeating(owner, person):
    from audit import queries

    same_time = timezone.now().replace(microsecond=0)
    events = [
        record_at(same_time, AuditAction.SIGN_IN, actor=person, target=person) for _ in range(7)
    ]
    events += [
        record_at(
            same_time - datetime.timedelta(seconds=1),
            AuditAction.SIGN_IN,
            actor=person,
            target=person,
        )
        for _ in range(3)
    ]
    expected = [e.pk for e in sorted(events, key=lambda e: (e.occurred_at, e.pk), reverse=True)]
    qs = AuditEvent.objects.filter(owner_id=owner.pk)
    seen, cursor, pages = [], None, []
    while True:
        page = queries.keyset_page(qs, after=cursor, size=3)
        pages.append(page)
        seen += [e.pk for e in page.events]
        if not page.has_next:
            break
        cursor = page.next_cursor
    assert seen == expected
    assert [len(p.events) for p in pages] == [3, 3, 3, 1]
    back = queries.keyset_page(qs, before=pages[2].previous_cursor, size=3)
    assert [e.pk for e in back.events] == [e.pk for e in pages[1].events]
    assert back.has_previous and back.has_next
    first = queries.keyset_page(qs, before=pages[1].previous_cursor, size=3)
    assert [e.pk for e in first.events] == expected[:3]
    assert not first.has_previous


def test_the_next_page_link_continues_where_the_page_ended(owner, admin_user, person, signed_in):
    for _ in range(53):
        record_at(None, AuditAction.SIGN_IN, actor=person, target=person, method="password")
    client = signed_in(admin_user)
    first = client.get(ACTIVITY + "?q=sam")
    assert len(first.context["events"]) == 50
    next_url = first.context["page"].next_url
    assert "q=sam" in next_url and "after=" in next_url
    second = client.get(ACTIVITY + next_url)
    assert len(second.context["events"]) == 3
    assert not set(ids(first)) & set(ids(second))
    assert second.context["page"].previous_url


def test_malformed_cursors_are_ignored(admin_user, signed_in, every_kind):
    assert signed_in(admin_user).get(ACTIVITY + "?after=bogus&before=x-y").status_code == 200


def test_query_count_does_not_grow_with_the_rows_shown(admin_user, person, signed_in):
    client = signed_in(admin_user)
    record_at(None, AuditAction.SIGN_IN, actor=person, target=person)
    client.get(tab_url("all"))  # warm the permission cache

    def count():
        with CaptureQueriesContext(connection) as queries:
            assert client.get(tab_url("all")).status_code == 200
        return len(queries)

    few = count()
    for n in range(40):
        record_at(
            None,
            AuditAction.USER_CHANGED,
            actor=admin_user,
            target=person,
            changes={"email": [f"{n}@a.test", f"{n}@b.test"]},
        )
    # The rows not drawn yet are read in full in one query, however many they are; then the
    # page reads only its positions again.
    assert count() == few + 1
    assert count() == few


# The chart.


def test_daily_counts_are_grouped_by_day_in_the_viewers_zone(owner, person):
    from audit import queries

    tz = zoneinfo.ZoneInfo("Europe/Berlin")
    today = datetime.date(2026, 11, 20)

    def at(day, hour):
        return datetime.datetime.combine(day, datetime.time(hour), tzinfo=tz)

    for hour in (9, 10, 23):
        record_at(at(today, hour), AuditAction.SIGN_IN, actor=person, target=person)
    record_at(
        at(today - datetime.timedelta(days=1), 8), AuditAction.SIGN_IN, actor=person, target=person
    )
    for _ in range(4):
        record_at(
            at(today - datetime.timedelta(days=3), 2),
            AuditAction.SIGN_IN_FAILED,
            owner=owner,
            actor_label="x",
        )
    record_at(at(today, 9), AuditAction.SIGN_OUT, actor=person, target=person)  # not counted
    record_at(
        at(today - datetime.timedelta(days=40), 9), AuditAction.SIGN_IN, actor=person, target=person
    )
    scope = queries.Scope(owner.pk, person.pk, personal_data=True)
    days = queries.daily_sign_ins(scope, tz=tz, today=today)
    assert len(days) == 30
    assert days[-1] == queries.DayCount(today, 3, 0)
    assert days[-2].sign_ins == 1
    assert days[-4].failures == 4
    assert sum(d.sign_ins for d in days) == 4


def test_today_is_counted_live_after_a_cached_boundary(owner, person, monkeypatch):
    """Today up to a recent boundary is counted once and cached; the minutes after it are
    counted again after LIVE_FOR seconds (here at once), so a page never counts a whole day."""
    from audit import queries

    monkeypatch.setattr(queries, "LIVE_FOR", 0)

    tz = datetime.UTC
    now = timezone.now()
    scope = queries.Scope(owner.pk, person.pk, personal_data=True)
    earlier = max(
        now - datetime.timedelta(minutes=20),
        datetime.datetime.combine(now.date(), datetime.time.min, tzinfo=tz),
    )
    record_at(earlier, AuditAction.SIGN_IN, actor=person, target=person)
    assert queries.daily_sign_ins(scope, tz=tz)[-1].sign_ins == 1
    record_at(None, AuditAction.SIGN_IN, actor=person, target=person)
    record_at(None, AuditAction.SIGN_IN_FAILED, owner=owner, actor_label="x")
    with CaptureQueriesContext(connection) as queries_made:
        today = queries.daily_sign_ins(scope, tz=tz)[-1]
    assert (today.sign_ins, today.failures) == (2, 1)
    # Past days and today up to the boundary come from the cache: only the live part is read,
    # sign-ins and failures in one query.
    assert len(queries_made) == 1


def test_the_last_minutes_are_kept_for_a_few_seconds(owner, person):
    from audit import queries

    scope = queries.Scope(owner.pk, person.pk, personal_data=True)
    record_at(None, AuditAction.SIGN_IN, actor=person, target=person)
    assert queries.daily_sign_ins(scope)[-1].sign_ins == 1
    with CaptureQueriesContext(connection) as queries_made:
        assert queries.daily_sign_ins(scope)[-1].sign_ins == 1
    assert len(queries_made) == 0
    assert queries.LIVE_FOR <= 10  # today's bar is at most seconds late


def test_the_chart_is_svg_with_title_desc_and_a_table(owner, admin_user, person, signed_in):
    for _ in range(2):
        record_at(None, AuditAction.SIGN_IN, actor=person, target=person)
    record_at(None, AuditAction.SIGN_IN_FAILED, owner=owner, actor_label="x")
    html = signed_in(admin_user).get(ACTIVITY).content.decode()
    assert '<svg class="chart__svg"' in html and 'role="img"' in html
    assert '<title id="chart-title">' in html
    assert "2 sign-ins and 1 failed attempt in 30 days" in html
    today = timezone.localdate()
    assert f"{today.day} {today:%b}: 2 sign-ins</title>" in html
    assert f"{today.day} {today:%b}: 1 failed attempt</title>" in html
    assert html.count('class="chart__bar chart__bar--sign-in"') == 30
    assert "<script" not in html.split('<figure class="card chart"')[1].split("</figure>")[0]


def test_the_chart_is_not_on_the_changes_tab(admin_user, signed_in):
    assert "chart__svg" not in signed_in(admin_user).get(tab_url("changes")).content.decode()


# Sensitive views and the timeline.


def test_record_view_appears_on_the_views_tab(admin_user, person, signed_in):
    record_view(admin_user, person, "Recovery codes")
    html = signed_in(admin_user).get(tab_url("views")).content.decode()
    assert "Recovery codes" in html and "Sam Support" in html


def test_the_export_reads_through_a_chunked_iterator(admin_user, signed_in, every_kind):
    from unittest import mock

    from django.db.models.query import QuerySet

    real = QuerySet.iterator
    calls = []

    def spy(self, chunk_size=None):
        calls.append(chunk_size)
        return real(self, chunk_size=chunk_size)

    with mock.patch.object(QuerySet, "iterator", spy):
        response = signed_in(admin_user).get(export_url("all"))
        rows = csv_rows(response)
    assert calls == [2000]
    assert len(rows) == len(every_kind) + 1  # and the export's own event


def test_platform_administrators_read_attempts_that_belong_to_no_owner(owner, signed_in):
    unknown = record_at(
        None,
        AuditAction.SIGN_IN_FAILED,
        actor_label="ghost",
        reason="No user with this login",
        context={"reason": "unknown_user", "login": "ghost"},
    )
    assert unknown.owner_id is None
    superuser = make_user(owner, is_superuser=True, privilege_level=10)
    client = signed_in(superuser)
    assert ids(client.get(tab_url("failed"))) == []
    response = client.get(tab_url("failed") + "?owner=none")
    assert ids(response) == [unknown.pk]
    assert 'name="owner" value="none"' in response.content.decode()
    detail = reverse("audit:event_detail", args=[unknown.pk])
    assert client.get(detail).status_code == 200
    # An owner's administrator never sees them, whatever the query string says.
    admin = make_user(
        owner,
        grants={catalog.USER_ACTIVITY: catalog.READ, catalog.DP_USER_ACTIVITY: catalog.READ},
        privilege_level=10,
    )
    other = signed_in(admin)
    assert ids(other.get(tab_url("failed") + "?owner=none")) == []
    assert other.get(detail).status_code == 404


def test_cursors_round_trip_to_the_microsecond():
    from types import SimpleNamespace

    from audit import queries

    when = datetime.datetime(2026, 11, 22, 9, 51, 17, 999999, tzinfo=datetime.UTC)
    token = queries.encode_cursor(SimpleNamespace(occurred_at=when, pk=42))
    assert queries.decode_cursor(token) == (when, 42)
    assert queries.decode_cursor("12-x") is None
    assert queries.decode_cursor("99999999999999999999999-1") is None
