"""Browser: the settings that now ask for a reason show the field beside their button, and a
missing reason is said next to it (webhook removal, SIEM stream, sign-in restriction)."""

import pytest
from playwright.sync_api import expect

from roles import catalog
from tests.builders import make_user
from tests.e2e.session import sign_in
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_reason_fields(page, live_server, screenshot_dir, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    admin = make_user(
        owner,
        username="ines",
        grants={catalog.PARAMETERS: catalog.FULL, catalog.USERS: catalog.FULL},
        privilege_level=9,
    )
    fran = make_user(owner, username="fran", privilege_level=1)
    endpoint, _ = services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Billing core",
        url="http://127.0.0.1:9/hooks",
        event_types=["user.created"],
    )
    sign_in(page, live_server, admin)
    page.set_viewport_size({"width": 1280, "height": 900})

    page.goto(f"{live_server.url}/settings/webhooks/{endpoint.pk}/delete/")
    page.get_by_role("button", name="Remove endpoint").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()
    page.screenshot(path=str(screenshot_dir / "webhook-remove-reason.png"), full_page=True)
    page.get_by_label("Reason").fill("Receiver retired")
    page.get_by_role("button", name="Remove endpoint").click()
    expect(page.get_by_text("Webhook endpoint Billing core removed.")).to_be_visible()

    page.goto(f"{live_server.url}/settings/siem/")
    expect(page.get_by_label("Reason")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "siem-stream-reason.png"), full_page=True)

    page.goto(f"{live_server.url}/users/{fran.pk}/sign-in-restriction/")
    page.get_by_label("Allowed networks").fill("203.0.113.0/24")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "restriction-reason.png"), full_page=True)
