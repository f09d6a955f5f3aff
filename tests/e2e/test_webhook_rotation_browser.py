"""Browser: rotating a webhook endpoint's signing secret from its page, the new secret shown
once, the overlap shown on the endpoint, then "Finish rotation" with a reason."""

import pytest
from playwright.sync_api import expect

from roles import catalog
from tests.builders import make_user
from tests.e2e.session import sign_in
from webhooks import services
from webhooks.models import WebhookEndpoint

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_rotate_then_finish(page, live_server, screenshot_dir, owner, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    admin = make_user(
        owner, username="ines", grants={catalog.PARAMETERS: catalog.FULL}, privilege_level=9
    )
    endpoint, first = services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Billing core",
        url="http://127.0.0.1:9/hooks",
        event_types=["user.created"],
    )
    sign_in(page, live_server, admin)
    page.goto(f"{live_server.url}/settings/webhooks/{endpoint.pk}/")
    page.get_by_role("link", name="Rotate secret").click()
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_text("This field is required.")).to_be_visible()  # the reason
    page.get_by_label("Overlap (hours)").fill("12")
    page.get_by_label("Reason").fill("Yearly rotation")
    page.screenshot(path=str(screenshot_dir / "webhook-rotate-form.png"), full_page=True)
    page.get_by_role("button", name="Rotate secret").click()
    expect(page.get_by_role("heading", name="Signing secret rotated")).to_be_visible()
    shown = page.get_by_label("Secret of “Billing core”").input_value()
    assert shown == WebhookEndpoint.objects.get(pk=endpoint.pk).secret != first
    page.screenshot(path=str(screenshot_dir / "webhook-secret-rotated.png"), full_page=True)
    page.get_by_role("link", name="I have copied it").click()
    expect(page.get_by_text("Rotating")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "webhook-rotating.png"), full_page=True)
    page.get_by_role("link", name="Finish rotation").click()
    page.get_by_label("Reason").fill("The receiver has the new secret")
    page.get_by_role("button", name="Finish rotation").click()
    expect(page.get_by_text("Rotation finished: only the new secret signs now.")).to_be_visible()
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).rotating()
