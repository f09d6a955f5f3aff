"""Separation of duties over the API: the rules and who violates them now, with API Roles read;
refused one level below, to application grants, and to anonymous callers; another owner's
rules never shown."""

import datetime

import pytest
from django.utils import timezone

from roles import sod
from roles.choices import SodEffect
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner, admin_user):
    invoicing = make_role_group(owner, "Invoicing", {"invoices": "full"})
    paying = make_role_group(owner, "Paying", {"payments": "full"})
    both = make_user(
        owner,
        username="bo",
        first_name="Bo",
        last_name="Both",
        role=make_role(owner, "All-rounder", [invoicing, paying]),
    )
    make_user(owner, username="ivy", role=make_role(owner, "Clerk", [invoicing]))
    block = sod.save_rule(
        None,
        {
            "name": "Invoicing vs recording payments",
            "left": [["invoices", "full"]],
            "right": [["payments", "full"]],
        },
        actor=admin_user,
        reason="",
    )
    taking = sod.save_rule(
        None,
        {
            "name": "Card payments vs card runs",
            "left": [["payments", "full"]],
            "right": [["payment_card_runs", "execute"], ["direct_debit_runs", "execute"]],
            "right_join": "all",
            "effect": SodEffect.EXCEPTION,
        },
        actor=admin_user,
        reason="",
    )
    approver = make_user(owner, grants={"access_requests": "approve"})
    exception = sod.grant_exception(
        taking,
        admin_user,  # holds every area at its top level
        actor=approver,
        requested_by=both,
        reason="Cover",
        expires_at=timezone.now() + datetime.timedelta(days=3),
    )
    return {"block": block, "taking": taking, "both": both, "exception": exception}


def test_rules_are_listed_with_their_sides(owner, world, token_for):
    api = token_for(owner, {"api_roles": "read"})
    response = api.get("/sod/rules")
    assert response.status_code == 200
    rules = {r["name"]: r for r in response.json()["items"]}
    taking = rules["Card payments vs card runs"]
    assert taking["effect"] == "exception" and taking["right_join"] == "all"
    assert taking["right"] == [
        {"area": "direct_debit_runs", "level": "execute"},
        {"area": "payment_card_runs", "level": "execute"},
    ]
    assert taking["right_text"] == "Direct Debit Runs (execute) and Payment Card Runs (execute)"
    assert rules["Invoicing vs recording payments"]["left"] == [
        {"area": "invoices", "level": "full"}
    ]


def test_violations_name_each_person_and_their_exception(owner, world, token_for):
    api = token_for(owner, {"api_roles": "read"})
    items = {i["rule"]["name"]: i for i in api.get("/sod/violations").json()["items"]}

    block = items["Invoicing vs recording payments"]
    assert block["count"] == 2
    assert {v["username"]: v["excepted"] for v in block["violators"]} == {
        "admin": False,
        "bo": False,
    }
    taking = items["Card payments vs card runs"]
    assert taking["count"] == 1
    (admin,) = taking["violators"]
    assert admin["username"] == "admin" and admin["excepted"] is True
    assert admin["exception_expires_at"].startswith(
        world["exception"].expires_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M")
    )

    one = api.get(f"/sod/violations?rule={world['block'].pk}&limit=1").json()["items"]
    assert len(one) == 1 and one[0]["count"] == 2 and len(one[0]["violators"]) == 1
    assert api.get("/sod/violations?rule=999999").status_code == 404
    assert api.get("/sod/violations?limit=5000").status_code == 422


@pytest.mark.parametrize("path", ["/sod/rules", "/sod/violations"])
def test_reading_needs_api_roles_read(owner, world, token_for, api, path):
    assert api.get(path).status_code == 401
    assert token_for(owner, {"api_roles": "none", "api_users": "read"}).get(path).status_code == 403
    # Full on User Groups in the application does not open the API.
    app_admin = token_for(owner, {"api_users": "read"}, app_grants={"settings_user_groups": "full"})
    assert app_admin.get(path).status_code == 403


def test_another_owners_rules_are_never_shown(owner, world, token_for):
    other = token_for(make_owner(), {"api_roles": "read"})
    assert other.get("/sod/rules").json()["items"] == []
    assert other.get("/sod/violations").json()["items"] == []
    assert other.get(f"/sod/violations?rule={world['block'].pk}").status_code == 404
