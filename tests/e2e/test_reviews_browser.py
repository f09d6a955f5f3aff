"""Browser: an access review from creation to closure, with one deactivation applied and
visible in the activity log with the campaign as its reason."""

import datetime

import pytest
from django.utils import timezone

from tests.builders import PASSWORD, make_role, make_role_group, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_access_review_from_creation_to_closure(page, live_server, screenshot_dir, admin_user):
    owner = admin_user.owner
    clerks = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"invoices": "full"})])
    make_user(owner, username="clara", first_name="Clara", last_name="Clerk", role=clerks)
    make_user(owner, username="carl", first_name="Carl", last_name="Clerk", role=clerks)
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")

    # Open the review from the menu.
    page.get_by_role("link", name="Access reviews").first.click()
    page.get_by_role("link", name="New access review").first.click()
    page.get_by_label("Name").fill("Q3 clerks")
    page.get_by_label("Users of a role").check()
    page.locator("#id_role").select_option(label="Clerk")
    page.get_by_label("Reviewers").select_option(label=admin_user.label)
    due = timezone.localdate() + datetime.timedelta(days=14)
    page.get_by_label("Due date").fill(due.isoformat())
    page.screenshot(path=str(screenshot_dir / "review-new.png"), full_page=True)
    page.get_by_role("button", name="Open the review").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Q3 clerks"
    assert "Campaign opened: 2 users to review." in page.content()
    assert page.get_by_role("heading", name="0 of 2 decided").is_visible()

    # Decide: deactivate Carl, keep Clara.
    page.get_by_role("link", name="Carl Clerk").click()
    assert page.get_by_role("heading", name="At the review's start").is_visible()
    page.get_by_label("Deactivate").check()
    page.get_by_role("button", name="Record decision", exact=True).click()
    assert "comment is required" in page.content()
    page.get_by_label("Deactivate").check()
    page.get_by_label("Comment").fill("Left the company in June")
    page.screenshot(path=str(screenshot_dir / "review-decision.png"), full_page=True)
    page.get_by_role("button", name="Record decision", exact=True).click()
    page.get_by_role("link", name="Clara Clerk").click()
    page.get_by_label("Keep access").check()
    page.get_by_role("button", name="Record decision", exact=True).click()
    assert page.get_by_role("heading", name="2 of 2 decided").is_visible()
    page.screenshot(path=str(screenshot_dir / "review-campaign.png"), full_page=True)

    # Closing is refused until the decisions are applied.
    page.get_by_role("link", name="Close the review").click()
    assert "cannot be closed yet" in page.content()
    page.go_back()

    page.get_by_role("link", name="Apply confirmed decisions (2)").click()
    page.get_by_role("button", name="Apply 2 decisions").click()
    assert "2 decision(s) applied." in page.content()
    assert "Deactivated: Login flag removed." in page.content()

    page.get_by_role("link", name="Close the review").click()
    page.get_by_role("button", name="Close the review").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Access review report: Q3 clerks"
    report = page.get_by_role("table").inner_text()
    assert "Left the company in June" in report
    page.screenshot(path=str(screenshot_dir / "review-report.png"), full_page=True)
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation", name="Main").is_visible()
    page.screenshot(path=str(screenshot_dir / "review-report-print.png"), full_page=True)
    page.emulate_media(media="screen")

    # The deactivation is in the activity log, with the campaign as its reason.
    page.goto(f"{live_server.url}/activity/changes/")
    row = page.get_by_role("row").filter(has_text="User deactivated")
    assert row.count() == 1
    assert "Access review: Q3 clerks" in row.inner_text()
    assert "Carl Clerk" in row.inner_text()

    page.goto(f"{live_server.url}/reviews/")
    assert page.get_by_role("img", name="Sign-ins and failed attempts per day").is_visible()
    page.screenshot(path=str(screenshot_dir / "review-dashboard.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "review-dashboard-phone.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []
