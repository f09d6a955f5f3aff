"""Browser: an administrator edits a role group's matrix in Chromium, sees the changed cells and
the impact preview, saves, and the change is in the audit log."""

import re

import pytest
from playwright.sync_api import expect

from audit.models import AuditEvent
from tests.builders import PASSWORD, make_role, make_role_group, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_edit_matrix_preview_and_save(page, live_server, screenshot_dir, admin_user, owner):
    finance = make_role_group(owner, "Finance", {"invoices": "full", "payments": "read"})
    make_user(
        owner,
        username="fran",
        first_name="Fran",
        last_name="Finance",
        role=make_role(owner, "Finance clerk", groups=[finance]),
    )
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")

    page.get_by_role("link", name="Role groups").first.click()
    page.get_by_role("link", name="Finance", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Finance")
    # matrix.js listens from DOMContentLoaded on: change a level only once the page has loaded.
    page.wait_for_load_state("load")

    # Change one cell: its row is highlighted and counted before anything is saved.
    page.get_by_label("Invoices", exact=True).select_option("read")
    invoices_row = page.locator("tr", has=page.get_by_label("Invoices", exact=True))
    expect(invoices_row).to_have_class(re.compile("is-changed"))
    expect(page.locator("[data-matrix-count]")).to_have_text("1")

    # The text filter narrows the rows; "set whole category" applies to what is shown.
    page.get_by_label("Filter areas").fill("ticket")
    expect(page.get_by_label("Tickets", exact=True)).to_be_visible()
    expect(page.get_by_label("Payments", exact=True)).to_be_hidden()
    page.get_by_label("Filter areas").fill("")
    page.get_by_label("Payments", exact=True).select_option("none")
    expect(page.locator("[data-matrix-count]")).to_have_text("2")
    page.get_by_label("Invoices", exact=True).scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "matrix.png"))

    page.get_by_role("button", name="Review changes").first.click()
    expect(page.get_by_role("heading", name="Review changes to Finance")).to_be_visible()
    expect(page.get_by_role("heading", name="Impact on users")).to_be_visible()
    expect(page.get_by_role("rowheader", name=re.compile("Fran Finance"))).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "matrix-preview.png"), full_page=True)

    page.get_by_label("Reason for the change (optional)").fill("Quarter close")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_text("Saved: 2 cells changed.")).to_be_visible()

    event = AuditEvent.objects.get(action="matrix_changed")
    assert event.changes == {"invoices": ["full", "read"], "payments": ["read", "none"]}
    assert event.reason == "Quarter close"
    assert finance.levels() == {"invoices": "read"}
    assert [e for e in errors if "Content Security Policy" in e] == []
