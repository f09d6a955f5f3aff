"""Browser: the Copy buttons of a new token, the backup codes and a new webhook secret put them on
the clipboard under the strict CSP (and select the text where the Clipboard API is missing); fields
side by side line up whatever their help says; the activity filter's button sits beside its
inputs."""

import re

import pytest
from playwright.sync_api import expect

from tests.builders import PASSWORD, make_api_user, make_user
from tests.e2e.session import sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


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


def csp_errors(page) -> list:
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def enrol_with_a_code(page, live_server):
    """Set up an authenticator app from the enrolment page; land on the backup codes."""
    import pyotp

    # The sign-in's own navigation first: going on while its POST is in flight cancels it.
    expect(page).not_to_have_url(re.compile(r"/sign-in/"))
    page.goto(f"{live_server.url}/me/two-factor/set-up/")
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    page.get_by_label("Code from your app").fill(pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your backup codes")).to_be_visible()


def test_copy_the_backup_codes(page, live_server, screenshot_dir, owner):
    make_user(owner, username="erin")
    errors = csp_errors(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    enrol_with_a_code(page, live_server)
    codes = page.locator("#backup-codes code").all_inner_texts()
    assert len(codes) == 10
    button = page.get_by_role("button", name="Copy the backup codes")
    button.click()
    expect(button).to_have_text("Copied")  # the visible state, then back to its label
    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == "\n".join(codes)
    page.screenshot(path=str(screenshot_dir / "backup-codes-copied.png"), full_page=True)
    expect(button).to_have_text("Copy all codes", timeout=5000)
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_without_the_clipboard_api_the_backup_codes_are_selected(page, live_server, owner):
    make_user(owner, username="erin")
    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined});"
        "document.execCommand = () => false;"
    )
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    enrol_with_a_code(page, live_server)
    codes = page.locator("#backup-codes code").all_inner_texts()
    button = page.get_by_role("button", name="Copy the backup codes")
    button.click()
    expect(button).to_have_text("Selected")
    selected = page.evaluate("window.getSelection().toString()")
    assert all(code in selected for code in codes), selected


def test_copy_a_new_webhook_secret(page, live_server, screenshot_dir, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the address below is on loopback
    person = make_user(owner, username="ivy", grants={"parameters": "full"})
    errors = csp_errors(page)
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    sign_in(page, live_server, person)
    page.goto(f"{live_server.url}/settings/webhooks/new/")
    page.get_by_label("Name").fill("Core billing")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hooks")
    page.get_by_label("User created", exact=True).check()
    page.get_by_label("Reason").fill("Ticket 12: core billing listens for new users")
    page.get_by_role("button", name="Save", exact=True).click()
    secret = page.locator("#secret-text").input_value()
    assert secret.startswith("whsec_")
    page.get_by_role("button", name="Copy the signing secret").click()
    expect(page.get_by_role("status").filter(has_text="Copied to the clipboard.")).to_be_visible()
    assert page.evaluate("navigator.clipboard.readText()") == secret
    page.screenshot(path=str(screenshot_dir / "webhook-secret-copied.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_without_the_clipboard_api_the_secret_is_selected(page, live_server, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    person = make_user(owner, username="ivy", grants={"parameters": "full"})
    # As on a plain-http page or an old browser: no navigator.clipboard, no copy command.
    page.add_init_script(
        "Object.defineProperty(Navigator.prototype, 'clipboard', {get: () => undefined});"
        "document.execCommand = () => false;"
    )
    sign_in(page, live_server, person)
    page.goto(f"{live_server.url}/settings/webhooks/new/")
    page.get_by_label("Name").fill("Core billing")
    page.get_by_label("URL").fill("http://127.0.0.1:9/hooks")
    page.get_by_label("User created", exact=True).check()
    page.get_by_label("Reason").fill("Ticket 12: core billing listens for new users")
    page.get_by_role("button", name="Save", exact=True).click()
    secret = page.locator("#secret-text").input_value()
    button = page.get_by_role("button", name="Copy the signing secret")
    button.click()
    expect(button).to_have_text("Selected")
    expect(page.get_by_role("status").filter(has_text="press Ctrl+C")).to_be_visible()
    selected = page.evaluate(
        "(() => { const f = document.getElementById('secret-text');"
        " return f.value.substring(f.selectionStart, f.selectionEnd); })()"
    )
    assert selected == secret


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
