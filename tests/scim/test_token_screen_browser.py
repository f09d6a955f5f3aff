"""Browser: an administrator creates a SCIM token on Settings → Provisioning (SCIM)."""

import os

import pytest
from playwright.sync_api import expect

from tests.builders import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _async_unsafe():
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


def test_create_a_token_and_see_it_once(page, live_server, screenshot_dir, admin_user):
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}/settings/provisioning/")
    assert page.get_by_role("heading", name="Provisioning (SCIM)").is_visible()
    page.get_by_label("Name").fill("Okta")
    page.get_by_role("button", name="Create token").click()
    secret = page.get_by_label("Token “Okta”", exact=False).input_value()
    assert secret.startswith("scim_")
    page.screenshot(path=str(screenshot_dir / "scim-token-created.png"), full_page=True)
    page.get_by_role("link", name="I have copied it").click()
    expect(page.get_by_role("cell", name="Never")).to_be_visible()  # waits for the list
    page.screenshot(path=str(screenshot_dir / "scim-tokens.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "scim-tokens-phone.png"), full_page=True)
