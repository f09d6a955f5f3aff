"""Places, devices, the per-user timeline, and the bulk loader."""

import datetime
from unittest import mock

import pytest
from django.core.management import call_command
from django.template.loader import render_to_string
from django.utils import timezone

from audit import display, geo, integrity, queries
from audit.choices import AuditAction
from audit.models import AuditChainHead, AuditEvent
from tests.audit.helpers import record_at
from tests.builders import make_user


@pytest.mark.parametrize(
    ("ip", "place"),
    [
        ("127.0.0.1", "This machine"),
        ("::1", "This machine"),
        ("10.20.0.7", "Private network"),
        ("192.168.1.1", "Private network"),
        ("fd12:3456::1", "Private network"),
        ("81.2.69.142", "United Kingdom"),
        ("8.8.8.8", "United States"),
        ("::ffff:8.8.8.8", "United States"),
        ("1.0.16.1", "Japan"),
        ("", "Unknown"),
        ("not-an-address", "Unknown"),
    ],
)
def test_locate_from_the_database_the_package_ships(ip, place, settings):
    settings.GEOIP_PATH = ""
    assert geo.locate(ip) == place


def test_locate_reads_a_maxmind_file_when_one_is_configured(settings):
    settings.GEOIP_PATH = "/data/GeoLite2-City.mmdb"
    reader = mock.Mock()
    reader.get.return_value = {
        "city": {"names": {"en": "London"}},
        "country": {"iso_code": "GB", "names": {"en": "United Kingdom"}},
    }
    with mock.patch("audit.geo._maxmind_reader", return_value=reader) as opened:
        assert geo.locate("81.2.69.142") == "London, United Kingdom"
        assert geo.locate("10.0.0.1") == "Private network"  # never asks the file
    opened.assert_called_with("/data/GeoLite2-City.mmdb")
    reader.get.return_value = None
    with mock.patch("audit.geo._maxmind_reader", return_value=reader):
        assert geo.locate("81.2.69.142") == "Unknown"
    with mock.patch("audit.geo._maxmind_reader", side_effect=OSError("missing")):
        assert geo.locate("81.2.69.142") == "Unknown"


@pytest.mark.parametrize(
    ("agent", "summary"),
    [
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge 131 on Windows",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
            "Gecko) Version/18.1 Safari/605.1.15",
            "Safari 18 on macOS",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
            "like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
            "Safari 18 on iPhone",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 Chrome/130.0 Mobile Safari/537.36",
            "Chrome 130 on Android",
        ),
        ("curl/8.5.0", "curl 8"),
        ("", "—"),
        ("something odd", "Unknown device"),
    ],
)
def test_user_agents_are_summarised(agent, summary):
    assert display.summarise_user_agent(agent) == summary


def test_values_read_well():
    assert display.format_value(None) == "—"
    assert display.format_value(True) == "Yes"
    assert display.format_value(["Finance", "Sales"]) == "Finance, Sales"
    assert display.field_label("user", "allow_api_read") == "API read"
    assert display.field_label("user", "role_id") == "Role"
    assert display.field_label("nothing", "some_field") == "Some field"


@pytest.mark.django_db
def test_timeline_merges_what_happened_to_and_by_a_user(owner):
    admin, person, other = make_user(owner), make_user(owner), make_user(owner)
    now = timezone.now()
    about = record_at(
        now - datetime.timedelta(hours=3), AuditAction.SIGN_IN, actor=person, target=person
    )
    by = record_at(
        now - datetime.timedelta(hours=2),
        AuditAction.USER_CHANGED,
        actor=person,
        target=other,
        changes={"email": ["a", "b"]},
    )
    to = record_at(
        now - datetime.timedelta(hours=1),
        AuditAction.USER_CHANGED,
        actor=admin,
        target=person,
        changes={"privilege_level": [1, 2]},
    )
    record_at(now, AuditAction.SIGN_IN, actor=other, target=other)
    assert [e.pk for e in queries.timeline(person.pk)] == [to.pk, by.pk, about.pk]
    assert [e.pk for e in queries.timeline(person.pk, limit=2)] == [to.pk, by.pk]
    assert [e.pk for e in queries.timeline(person.pk, before=to.occurred_at)] == [by.pk, about.pk]
    assert [e.pk for e in queries.timeline(person.pk, personal_data=False)] == [to.pk, by.pk]


@pytest.mark.django_db
def test_the_timeline_partial_renders(owner):
    person = make_user(owner, first_name="Fran", last_name="Finance")
    record_at(None, AuditAction.SIGN_IN, actor=person, target=person, method="password")
    events = display.decorate(queries.timeline(person.pk))
    html = render_to_string(
        "audit/_timeline.html", {"timeline": events, "timeline_more_url": "/activity/all/?q=x"}
    )
    assert "Signed in" in html and "United Kingdom" in html and "/activity/all/?q=x" in html
    assert "No activity yet" in render_to_string("audit/_timeline.html", {"timeline": []})


@pytest.mark.django_db
def test_seed_events_loads_a_valid_chain_and_keeps_the_triggers(owner, capsys):
    make_user(owner)
    make_user(owner)
    record_at(None, AuditAction.USER_CHANGED, owner=owner, actor_label="before the load")
    call_command("seed_events", events=2500, owner=owner.slug, batch=1000, days=30)
    assert "events/s" in capsys.readouterr().out
    assert AuditEvent.objects.filter(owner_id=owner.pk).count() == 2501
    assert AuditChainHead.objects.get(chain=owner.pk).seq == 2501
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {AuditAction.SIGN_IN, AuditAction.SIGN_IN_FAILED, AuditAction.USER_CHANGED} <= actions
    report = integrity.verify()
    assert report.ok, report.breaks
    assert integrity.triggers_installed()
