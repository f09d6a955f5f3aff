"""Browser: a person creates an API token, calls the API with it, revokes it; the inventory; the
API reference page under the strict CSP."""

import json
import urllib.error
import urllib.request

import pytest

from tests.builders import make_api_user, make_token
from tests.e2e.session import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def call_api(live_server, text, path="/api/v1/me"):
    request = urllib.request.Request(
        f"{live_server.url}{path}", headers={"Authorization": f"Bearer {text}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_create_use_and_revoke_a_token(page, live_server, screenshot_dir, owner):
    person = make_api_user(
        owner,
        api_grants={"api_users": "read", "api_roles": "write"},
        kind="interactive",
        allow_login=True,
        username="dana",
        first_name="Dana",
    )
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live_server, person)
    page.goto(f"{live_server.url}/me/tokens/")
    assert page.get_by_role("heading", name="Your API tokens").is_visible()
    page.get_by_label("Name").fill("Invoice export job")
    page.get_by_label("Expires after (days)").fill("30")
    page.get_by_label("Users (read)").check()
    page.get_by_label("Allowed networks").fill("127.0.0.1/32")
    page.screenshot(path=str(screenshot_dir / "tokens-create.png"), full_page=True)
    page.get_by_role("button", name="Create token").click()
    assert page.get_by_role("heading", name="Token created").is_visible()
    text = page.get_by_label("Token “Invoice export job”", exact=False).input_value()
    assert text.startswith("ba_")
    page.screenshot(path=str(screenshot_dir / "tokens-created.png"), full_page=True)

    status, body = call_api(live_server, text)
    assert status == 200
    assert body["permissions"] == {"api_users": "read"}
    assert call_api(live_server, text, "/api/v1/roles")[0] == 403

    page.get_by_role("link", name="I have copied it").click()
    page.get_by_role("link", name="Revoke Invoice export job").click()
    page.get_by_role("button", name="Revoke token").click()
    assert page.get_by_text("revoked: it stops working at once").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "tokens-mine-phone.png"), full_page=True)
    assert call_api(live_server, text)[0] == 401
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_inventory_and_api_reference(page, live_server, screenshot_dir, owner, admin_user):
    robot = make_api_user(owner, api_grants={"api_users": "read"}, username="billing-sync")
    make_token(robot, actor=admin_user, name="Nightly sync", allowed_networks=["10.0.0.0/8"])
    make_token(robot, actor=admin_user, name="Reporting", read_only=True)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, live_server, admin_user)
    page.goto(f"{live_server.url}/")
    page.get_by_role("link", name="API tokens").first.click()
    assert page.get_by_role("heading", name="API tokens").is_visible()
    assert page.get_by_role("row", name="Nightly sync").is_visible()
    page.screenshot(path=str(screenshot_dir / "tokens-inventory.png"), full_page=True)
    page.get_by_role("link", name="billing-sync").first.click()
    assert page.get_by_role("heading", name="API tokens of billing-sync").is_visible()
    page.screenshot(path=str(screenshot_dir / "tokens-of-api-user.png"), full_page=True)

    page.goto(f"{live_server.url}/api/v1/docs")
    assert page.get_by_role("rowheader", name="/api/v1/authz/check").is_visible()
    page.screenshot(path=str(screenshot_dir / "api-docs.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []
