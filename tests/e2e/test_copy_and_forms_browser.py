"""Browser: a new token's Copy button puts it on the clipboard under the strict CSP; fields side
by side line up whatever their help says; the activity filter's button sits beside its inputs."""

import pytest
from django.conf import settings
from django.test import Client
from playwright.sync_api import expect

from tests.builders import make_api_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, live_server, user):
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    cookie = client.cookies[settings.SESSION_COOKIE_NAME]
    page.context.add_cookies([{"name": cookie.key, "value": cookie.value, "url": live_server.url}])


def test_copy_a_new_token(page, live_server, screenshot_dir, owner):
    person = make_api_user(
        owner,
        api_grants={"api_users": "read"},
        kind="interactive",
        allow_login=True,
        username="dana",
    )
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, person)
    page.goto(f"{live_server.url}/me/tokens/")
    page.get_by_label("Name").fill("Nightly export")
    page.get_by_label("Expires after (days)").fill("30")
    page.get_by_role("button", name="Create token").click()
    text = page.get_by_label("Token “Nightly export”", exact=False).input_value()
    button = page.get_by_role("button", name="Copy the token")
    expect(button).to_be_visible()  # shown once copy.js runs; hidden without it
    button.click()
    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == text
    page.screenshot(path=str(screenshot_dir / "token-copied.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_fields_and_the_filter_button_line_up(page, live_server, screenshot_dir, admin_user):
    sign_in(page, live_server, admin_user)
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/users/new/")
    tops = page.evaluate(
        """() => ['kind', 'auth_source', 'customer_access_scope', 'role', 'privilege_level']
            .map(name => Math.round(document.querySelector(`[name=${name}]`)
                .getBoundingClientRect().top))"""
    )
    assert tops[0] == tops[1] and tops[2] == tops[3] == tops[4], tops
    page.screenshot(path=str(screenshot_dir / "user-form-aligned.png"), full_page=True)
    page.goto(f"{live_server.url}/activity/")
    box = page.evaluate(
        """() => {
            const to = document.querySelector('[name=until]').getBoundingClientRect();
            const button = [...document.querySelectorAll('.filters button')]
                .find(b => b.textContent.trim() === 'Filter').getBoundingClientRect();
            return {toBottom: to.bottom, buttonBottom: button.bottom, toRight: to.right,
                    buttonLeft: button.left};
        }"""
    )
    assert abs(box["toBottom"] - box["buttonBottom"]) <= 1, box
    assert box["buttonLeft"] > box["toRight"], box  # beside the last input, not below it
    page.locator("form.filters").screenshot(path=str(screenshot_dir / "activity-filters.png"))
