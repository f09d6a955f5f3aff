"""Browser: enrol an authenticator app, then sign in with a TOTP code and with a backup code."""

import time

import pyotp
import pytest
from playwright.sync_api import expect

from delivery.worker import run_due
from tests.builders import PASSWORD, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in_with_password(page, base):
    page.goto(f"{base}/sign-in/")
    page.get_by_label("Username or email").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/sign-in/")


def test_enrol_then_sign_in_with_code_and_backup_code(page, live_server, screenshot_dir, owner):
    make_user(owner, username="erin", first_name="Erin", last_name="Example")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    base = live_server.url

    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/")
    page.get_by_role("link", name="Two-factor sign-in").first.click()
    page.get_by_role("link", name="Set up an authenticator app").click()
    assert page.locator(".enrol__qr svg").is_visible()
    page.screenshot(path=str(screenshot_dir / "twofactor-enrol.png"), full_page=True)
    secret = page.locator("#totp-secret").get_attribute("data-secret")
    totp = pyotp.TOTP(secret)

    page.get_by_label("Code from your app").fill(totp.now())
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    assert page.get_by_role("heading", name="Your backup codes").is_visible()
    codes = page.locator("#backup-codes code").all_inner_texts()
    assert len(codes) == 10
    page.screenshot(path=str(screenshot_dir / "twofactor-backup-codes.png"), full_page=True)
    page.get_by_role("link", name="I have saved my codes").click()
    sign_out(page)

    # Password, then a code from the app.
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/sign-in/verify/")
    page.screenshot(path=str(screenshot_dir / "twofactor-verify.png"), full_page=True)
    # The enrolment spent this step's code: a code of the next step is within tolerance.
    page.get_by_label("Code").fill(totp.at(time.time() + 30))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Welcome")
    sign_out(page)

    # Password, then a backup code.
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/sign-in/verify/")
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url(f"{base}/")
    sign_out(page)

    # The same backup code a second time is refused.
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/sign-in/verify/")
    page.get_by_label("Code").fill(codes[0])
    page.get_by_role("button", name="Verify").click()
    assert page.get_by_role("alert").inner_text().startswith("That code did not work")
    assert page.url == f"{base}/sign-in/verify/"
    page.screenshot(path=str(screenshot_dir / "twofactor-verify-refused.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_enrolment_page_on_a_phone(page, live_server, screenshot_dir, owner):
    make_user(owner, username="erin")
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in_with_password(page, live_server.url)
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/me/two-factor/set-up/")
    assert page.locator(".enrol__qr svg").is_visible()
    page.screenshot(path=str(screenshot_dir / "twofactor-enrol-phone.png"), full_page=True)


def test_support_console_and_public_recovery(page, live_server, screenshot_dir, owner):
    from django.core import mail

    from accounts.twofactor import services as twofactor
    from roles import catalog
    from tests.builders import make_totp_device

    make_user(
        owner,
        username="sam",
        first_name="Sam",
        last_name="Support",
        grants={catalog.DP_ACCESS: catalog.FULL, catalog.USERS: catalog.READ},
        privilege_level=8,
    )
    alice = make_user(
        owner, username="alice", first_name="Alice", last_name="Lost", privilege_level=3
    )
    make_totp_device(alice)
    base = live_server.url

    page.goto(f"{base}/sign-in/")
    page.get_by_label("Username or email").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/users/{alice.pk}/security/")
    assert page.get_by_role("heading", name="Two-factor sign-in").is_visible()
    page.screenshot(path=str(screenshot_dir / "twofactor-security-tab.png"), full_page=True)
    page.get_by_role("link", name="Recovery console").click()
    page.wait_for_url(f"{base}/users/{alice.pk}/recovery/")
    state = page.locator(".console-state")
    expect(state).to_contain_text("Not locked")
    expect(state).to_contain_text("Authenticator app (TOTP): set up")
    page.get_by_role("button", name="Continue").click()
    assert page.locator(".field--invalid").count() >= 4
    page.get_by_label("I verified the person's identity", exact=False).check()
    page.get_by_label("The person confirmed the email address", exact=False).check()
    page.get_by_label("The person asked for exactly this action", exact=False).check()
    page.get_by_label("Reason").fill("Ticket 4711: lost phone")
    page.get_by_label("Send a recovery code email").check()
    page.get_by_label("End all sessions").check()
    page.screenshot(path=str(screenshot_dir / "twofactor-recovery-console.png"), full_page=True)
    page.get_by_role("button", name="Continue").click()
    expect(page.get_by_role("heading", name="Check and confirm")).to_be_visible()
    page.screenshot(
        path=str(screenshot_dir / "twofactor-recovery-console-confirm.png"), full_page=True
    )
    page.get_by_role("button", name="Do it and tell the user").click()
    assert (
        page.locator(".messages")
        .inner_text()
        .startswith(
            "All sessions ended; recovery code emailed to the user. Alice Lost was told by email."
        )
    )
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(
        path=str(screenshot_dir / "twofactor-recovery-console-phone.png"), full_page=True
    )
    page.set_viewport_size({"width": 1280, "height": 900})
    done = screenshot_dir / "twofactor-recovery-console-done.png"
    page.screenshot(path=str(done), full_page=True)
    run_due()  # the worker sends the outbox's email
    code = next(
        line.strip()
        for email in mail.outbox
        if email.subject.endswith("your recovery code")
        for line in email.body.splitlines()
        if line.startswith("    ")
    )
    page.get_by_role("button", name="Sign out").click()

    page.goto(f"{base}/recover/")
    page.get_by_label("Email address").fill(alice.email)
    page.get_by_label("Recovery code").fill(code)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(f"{base}/recover/choose/")
    page.screenshot(path=str(screenshot_dir / "twofactor-recover-choose.png"), full_page=True)
    page.get_by_role("button", name="Remove two-factor device").click()
    page.wait_for_url(f"{base}/sign-in/")
    assert "two-factor device was removed" in page.locator(".messages").inner_text()
    assert not twofactor.has_confirmed_device(alice)
