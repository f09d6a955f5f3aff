"""Browser: a security reviewer signs in, reads the activity log and its chart, filters it."""

import pytest

from tests.builders import PASSWORD

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_reviewer_reads_sign_ins_chart_and_filters(page, live_server, screenshot_dir, admin_user):
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")

    page.get_by_role("link", name="Activity").first.click()
    assert page.get_by_role("heading", level=1).inner_text() == "Activity"
    chart = page.get_by_role("img", name="Sign-ins and failed attempts per day")
    assert chart.is_visible()
    assert "1 sign-in" in page.locator("#chart-desc").text_content()
    table = page.get_by_role("table").last
    assert "Signed in" in table.inner_text()
    assert "This machine" in table.inner_text()
    page.screenshot(path=str(screenshot_dir / "activity-sign-ins.png"), full_page=True)

    page.get_by_role("link", name="Failed attempts").click()
    assert "Wrong password" in page.get_by_role("table").last.inner_text()
    page.get_by_role("link", name="All events").click()
    page.get_by_label("Person").fill("admin")
    page.get_by_role("button", name="Filter").click()
    assert "q=admin" in page.url
    page.get_by_role("table").last.get_by_role("link").first.click()
    assert page.get_by_role("heading", name="Integrity").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "activity-event-phone.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []
