"""Browser: the just-in-time screens around eligibility and limits. An access review item lists
what its user is eligible for apart from standing access and removes an own eligibility; the
password policy screen sets the longest elevation; an impact preview shows an elevation in
force as "elevated until"."""

import datetime

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from roles import elevations
from tests.builders import PASSWORD, make_role, make_role_group, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def sign_in(page, base, username):
    page.goto(f"{base}/sign-in/")
    page.get_by_label("Username or email").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base}/")


def test_a_review_removes_an_own_eligibility(page, live_server, screenshot_dir, admin_user):
    owner = admin_user.owner
    invoices = make_role_group(owner, "Invoice clerks", {"invoices": "full"})
    payments = make_role_group(owner, "Payment releasers", {"payments": "full"})
    debits = make_role_group(owner, "Direct debit runs", {"parameters": "read"})
    role = make_role(owner, "Clerk", groups=[invoices])
    role.eligible_role_groups.add(payments)
    clara = make_user(owner, username="clara", first_name="Clara", last_name="Clerk", role=role)
    elevations.make_eligible(clara, debits, actor=admin_user, reason="Covers for Dan in July")
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    sign_in(page, live_server.url, "admin")
    page.get_by_role("link", name="Access reviews").first.click()
    page.get_by_role("link", name="New access review").first.click()
    page.get_by_label("Name").fill("Q3 clerks")
    page.get_by_label("Users of a role").check()
    page.locator("#id_role").select_option(label="Clerk")
    page.get_by_label("Reviewers").select_option(label=admin_user.label)
    due = timezone.localdate() + datetime.timedelta(days=14)
    page.get_by_label("Due date").fill(due.isoformat())
    page.get_by_role("button", name="Open the review").click()
    page.get_by_role("link", name="Clara Clerk").click()

    eligible = page.locator("section.review-eligible")
    assert eligible.get_by_role("heading", name="Eligible").is_visible()
    rows = eligible.get_by_role("row").all_inner_texts()
    assert any("Direct debit runs" in r and "Their own: Covers for Dan in July" in r for r in rows)
    assert any("Payment releasers" in r and "The role Clerk" in r for r in rows)
    assert eligible.get_by_role("link", name="Clerk").get_attribute("href") == (
        f"/access/roles/{role.pk}/"
    )
    page.get_by_label("Remove eligibility").check()
    page.locator("#id_eligibility_id").select_option(
        label=("Direct debit runs (Covers for Dan in July)")
    )
    page.get_by_label("Comment").fill("Dan is back from leave")
    page.screenshot(path=str(screenshot_dir / "review-item-eligibility.png"), full_page=True)
    page.get_by_role("button", name="Record decision", exact=True).click()
    page.get_by_role("link", name="Apply confirmed decisions (1)").click()
    assert "(Direct debit runs)" in page.content()
    page.get_by_role("button", name="Apply 1 decision").click()
    assert "Eligibility removed: Direct debit runs (can no longer be requested)." in page.content()
    page.screenshot(path=str(screenshot_dir / "review-eligibility-applied.png"), full_page=True)
    assert [g.name for g in elevations.eligible_groups(clara)] == ["Payment releasers"]
    assert AuditEvent.objects.filter(
        action="eligibility_changed", reason="Access review: Q3 clerks"
    ).exists()
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_the_policy_screen_sets_the_longest_elevation(page, live_server, screenshot_dir, owner):
    make_user(owner, username="pat", grants={"parameters": "full"})
    sign_in(page, live_server.url, "pat")
    page.goto(f"{live_server.url}/settings/password-policy/")
    section = page.locator("#policy-elevations")
    assert section.get_by_role("heading", name="Just-in-time access").is_visible()
    field = page.get_by_label("Longest elevation (hours)")
    assert field.input_value() == "8"
    field.fill("96")
    page.get_by_label("Reason for the change").fill("Long weekend cover")
    page.get_by_role("button", name="Save elevation limit").click()
    assert "from 1 to 72" in section.inner_text()
    page.screenshot(path=str(screenshot_dir / "policy-elevation-error.png"), full_page=True)
    page.get_by_label("Longest elevation (hours)").fill("12")
    page.get_by_role("button", name="Save elevation limit").click()
    assert "Elevations now last at most 12 hours." in page.content()
    page.locator("#policy-elevations").scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "policy-elevation.png"), full_page=True)
    owner.refresh_from_db()
    assert owner.max_elevation_hours == 12


def test_the_impact_preview_marks_an_elevation_in_force(
    page, live_server, screenshot_dir, admin_user
):
    owner = admin_user.owner
    readers = make_role_group(owner, "Invoice readers", {"invoices": "read"})
    admins = make_role_group(owner, "Invoice admins", {"invoices": "full"})
    role = make_role(owner, "Clerk", groups=[readers])
    role.eligible_role_groups.add(admins)
    clara = make_user(owner, username="clara", first_name="Clara", last_name="Clerk", role=role)
    request = elevations.request_access(clara, admins, justification="Month-end", hours=2)
    elevation = elevations.approve(request, actor=admin_user)

    sign_in(page, live_server.url, "admin")
    page.goto(f"{live_server.url}/access/role-groups/{readers.pk}/")
    page.locator("#cell-invoices").select_option("none")
    page.get_by_role("button", name="Review changes").first.click()
    table = page.locator("table.impact__table")
    text = table.inner_text()
    until = timezone.localtime(elevation.ends_at).strftime("%H:%M")
    assert "Clara Clerk" in text and f"elevated until {until}" in text
    assert "then read" in text and "then none" in text
    assert "lowered when the elevation ends" in text
    page.screenshot(path=str(screenshot_dir / "impact-elevated.png"), full_page=True)
