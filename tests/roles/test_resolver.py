"""The resolver: a pure function, tested by examples and by properties (hypothesis)."""

import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from roles import catalog
from roles.resolver import GroupGrant, OverrideRule, Subject, resolve

NOW = datetime.datetime(2026, 11, 22, 12, 0, tzinfo=datetime.UTC)
APP = catalog.Channel.APPLICATION
API = catalog.Channel.API
ACTIVE = Subject(allow_login=True, allow_api_read=True, allow_api_write=True, privilege_level=10)

app_areas = st.sampled_from(catalog.areas_for(APP))
api_areas = st.sampled_from(catalog.areas_for(API))
any_area = st.sampled_from(catalog.AREAS)


@st.composite
def grants(draw, areas=any_area, max_size=30):
    result = []
    for n in range(draw(st.integers(0, max_size))):
        area = draw(areas)
        level = draw(st.sampled_from(area.levels))
        group = draw(st.integers(1, 6))
        result.append(
            GroupGrant(group, f"G{group}", area.code, level, via_role=draw(st.booleans()))
        )
    return result


@st.composite
def overrides(draw, max_size=5):
    result, seen = [], set()
    for _ in range(draw(st.integers(0, max_size))):
        area = draw(any_area)
        if area.code in seen:
            continue
        seen.add(area.code)
        result.append(OverrideRule(area.code, draw(st.sampled_from(area.levels)), "because"))
    return result


def test_highest_group_level_wins():
    result = resolve(
        APP,
        ACTIVE,
        [
            GroupGrant(1, "Finance", "invoices", "read"),
            GroupGrant(2, "Billing", "invoices", "full"),
        ],
        now=NOW,
    )
    assert result.level("invoices") == "full"
    assert [r.group_id for r in result.explain("invoices").because] == [2]


def test_restricting_override_is_a_deny_no_group_undoes():
    result = resolve(
        APP,
        ACTIVE,
        [GroupGrant(1, "Admins", "users", "full")],
        [OverrideRule("users", "none", "under investigation")],
        now=NOW,
    )
    assert result.level("users") == "none"
    assert not result.has("users", "read")
    assert result.explain("users").because[0].kind == "override"


def test_expired_override_stops_counting_and_the_earliest_expiry_is_kept():
    soon = NOW + datetime.timedelta(hours=1)
    result = resolve(
        APP,
        ACTIVE,
        [],
        [
            OverrideRule(
                "invoices", "full", "cover", expires_at=NOW - datetime.timedelta(seconds=1)
            ),
            OverrideRule("payments", "read", "cover", expires_at=soon),
        ],
        now=NOW,
    )
    assert result.level("invoices") == "none"
    assert result.level("payments") == "read"
    assert result.expires_at == soon
    assert not result.is_fresh(soon)


def test_login_flag_gate_closes_the_application():
    subject = Subject(allow_login=False, privilege_level=10)
    result = resolve(APP, subject, [GroupGrant(1, "Admins", "users", "full")], now=NOW)
    assert result.level("users") == "none"
    assert result.explain("users").because[-1].kind == "gate"


def test_data_protection_needs_the_owner_minimum_privilege():
    low = Subject(privilege_level=2, data_protection_min_privilege=5)
    result = resolve(
        APP,
        low,
        [
            GroupGrant(1, "Support", "dp_data_protection_access", "full"),
            GroupGrant(1, "Support", "users", "read"),
        ],
        now=NOW,
    )
    assert result.level("dp_data_protection_access") == "none"
    assert result.level("users") == "read"


def test_api_read_flag_caps_writes():
    subject = Subject(allow_api_read=True, allow_api_write=False)
    result = resolve(API, subject, [GroupGrant(1, "CRM", "api_customers", "write")], now=NOW)
    assert result.level("api_customers") == "read"


def test_no_api_flag_no_api():
    subject = Subject(allow_api_read=False, allow_api_write=False)
    result = resolve(API, subject, [GroupGrant(1, "CRM", "api_customers", "write")], now=NOW)
    assert result.levels == {}


def test_superuser_holds_every_area():
    result = resolve(APP, Subject(is_superuser=True), [], now=NOW)
    assert all(result.level(a.code) == a.top for a in catalog.areas_for(APP))


@settings(max_examples=200, deadline=None)
@given(base=grants(), extra=grants(max_size=10), rules=overrides())
def test_adding_a_group_never_lowers_a_level(base, extra, rules):
    before = resolve(APP, ACTIVE, base, rules, now=NOW)
    after = resolve(APP, ACTIVE, base + extra, rules, now=NOW)
    for area in catalog.areas_for(APP):
        assert area.rank(after.level(area.code)) >= area.rank(before.level(area.code))


@settings(max_examples=200, deadline=None)
@given(base=grants(), rules=overrides())
def test_an_override_always_decides_its_area(base, rules):
    for channel in catalog.Channel.ALL:
        result = resolve(channel, ACTIVE, base, rules, now=NOW)
        for rule in rules:
            if catalog.get(rule.area).channel == channel:
                assert result.level(rule.area) == rule.level


@settings(max_examples=200, deadline=None)
@given(app=grants(areas=app_areas), api=grants(areas=api_areas))
def test_channels_never_leak(app, api):
    only_app = resolve(API, ACTIVE, app, now=NOW)
    only_api = resolve(APP, ACTIVE, api, now=NOW)
    assert only_app.levels == {}
    assert only_api.levels == {}
    both_api = resolve(API, ACTIVE, app + api, now=NOW)
    assert both_api.levels == resolve(API, ACTIVE, api, now=NOW).levels


@settings(max_examples=100, deadline=None)
@given(base=grants(), rules=overrides())
def test_every_level_above_none_is_explained(base, rules):
    result = resolve(APP, ACTIVE, base, rules, now=NOW)
    for code, level in result.levels.items():
        assert level != "none"
        assert result.because[code], code


# Elevations: grants with a window ----------------------------------------------------------------

HOUR = datetime.timedelta(hours=1)


@st.composite
def elevations(draw, max_size=8):
    result = []
    for n in range(draw(st.integers(0, max_size))):
        area = draw(app_areas)
        level = draw(st.sampled_from(area.levels))
        start = NOW + draw(st.integers(-10, 10)) * HOUR
        end = start + draw(st.integers(0, 8)) * HOUR
        group = draw(st.integers(7, 9))
        result.append(GroupGrant(group, f"E{group}", area.code, level, False, start, end, n + 1))
    return result


@settings(max_examples=200, deadline=None)
@given(base=grants(areas=app_areas), elevated=elevations(), rules=overrides())
def test_an_elevation_counts_exactly_inside_its_window(base, elevated, rules):
    in_window = [e for e in elevated if e.starts_at <= NOW < e.ends_at]
    as_standing = [GroupGrant(e.group_id, e.group_name, e.area, e.level) for e in in_window]
    with_elevations = resolve(APP, ACTIVE, base + elevated, rules, now=NOW)
    assert with_elevations.levels == resolve(APP, ACTIVE, base + as_standing, rules, now=NOW).levels


@settings(max_examples=200, deadline=None)
@given(base=grants(areas=app_areas), elevated=elevations())
def test_the_result_goes_stale_at_the_next_start_or_end(base, elevated):
    result = resolve(APP, ACTIVE, base + elevated, now=NOW)
    moments = [e.starts_at for e in elevated if e.starts_at > NOW]
    moments += [e.ends_at for e in elevated if e.starts_at <= NOW < e.ends_at]
    assert result.expires_at == (min(moments) if moments else None)
    if result.expires_at is not None:
        # Nothing moves before then: resolving a moment earlier gives the same levels.
        just_before = result.expires_at - datetime.timedelta(seconds=1)
        assert resolve(APP, ACTIVE, base + elevated, now=just_before).levels == result.levels


def test_an_elevation_is_explained_with_its_end_and_request():
    grant = GroupGrant(3, "Payments", "payments", "full", False, NOW - HOUR, NOW + HOUR, 42)
    decision = resolve(APP, ACTIVE, [grant], now=NOW).explain("payments")
    assert decision.level == "full"
    assert decision.because[0].kind == "elevation"
    assert "request #42" in decision.because[0].text
    assert "2026-11-22 13:00" in decision.because[0].text
