"""Browser: a person signs in with the real form in headless Chromium and lands on the home page."""

import pytest

from tests.builders import PASSWORD, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_sign_in_and_land_on_home(page, live_server, screenshot_dir, admin_user):
    page.goto(f"{live_server.url}/")
    assert "/sign-in/" in page.url
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill("not it")
    page.get_by_role("button", name="Sign in", exact=True).click()
    assert page.get_by_role("alert").inner_text().startswith("Those sign-in details did not work")
    page.screenshot(path=str(screenshot_dir / "sign-in-refused.png"), full_page=True)

    page.get_by_label("Username or email").fill("admin@example.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")
    assert page.get_by_role("heading", level=1).inner_text().startswith("Welcome")
    assert page.get_by_role("link", name="My access").count() >= 1
    page.screenshot(path=str(screenshot_dir / "home.png"), full_page=True)

    page.get_by_role("link", name="My access").first.click()
    assert page.get_by_role("heading", name="My access").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "my-access-phone.png"), full_page=True)


def test_no_console_csp_violations(page, live_server, owner):
    make_user(owner, username="plain")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("plain")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")
    assert [e for e in errors if "Content Security Policy" in e] == []
