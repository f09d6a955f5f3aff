"""Browser: turning on required two-factor sign-in warns first (who is affected, the
administrator included), saves only once confirmed, then sends the administrator to set-up."""

import pytest
from playwright.sync_api import expect

from security.models import PasswordPolicy
from tests.builders import PASSWORD, make_totp_device, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_require_2fa_is_confirmed_before_it_is_saved(page, live_server, screenshot_dir, owner):
    make_user(owner, username="gus")
    make_totp_device(make_user(owner, username="hal"))
    make_user(owner, username="erin", grants={"parameters": "full"})
    page.set_viewport_size({"width": 1280, "height": 900})
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("erin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.goto(f"{live_server.url}/settings/password-policy/")
    page.get_by_label("Require two-factor authentication").check()
    page.get_by_label("Why the policy changes").fill("Audit finding 12")
    page.get_by_role("button", name="Save policy").click()

    warning = page.locator(".require-2fa-warning")
    expect(warning).to_contain_text("Nothing is saved yet")
    expect(warning).to_contain_text("2 active people")  # gus and erin; hal has an app
    expect(warning).to_contain_text("You are one of them")
    page.screenshot(path=str(screenshot_dir / "policy-require-2fa-warning.png"), full_page=True)
    assert not PasswordPolicy.objects.filter(owner=owner, require_2fa=True).exists()

    page.get_by_role("button", name="Save and require two-factor sign-in").click()
    expect(page.get_by_text("Tick this to require two-factor sign-in")).to_be_visible()
    assert not PasswordPolicy.objects.filter(owner=owner, require_2fa=True).exists()

    page.get_by_label("I understand: these people must set up").check()
    page.get_by_role("button", name="Save and require two-factor sign-in").click()
    expect(page).to_have_url(f"{live_server.url}/me/two-factor/set-up/")
    assert PasswordPolicy.objects.get(owner=owner).require_2fa
