"""Browser: separation of duties. An administrator adds the starter rules, is refused a second,
conflicting role group on the user edit screen (the page names the rule), sees the conflict in
the impact preview; a rule is set to take exceptions, a second person approves one for the
colleague asking, the change then goes through, the report shows it covered, and it ends by
itself."""

import datetime
import re

import pytest
from django.db import transaction
from django.utils import timezone
from playwright.sync_api import expect

import audit
from audit.choices import AuditAction
from reviews import services as reviews
from reviews.choices import ScopeKind
from roles.models import SodException, SodRule
from tests.builders import PASSWORD, make_role, make_role_group, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def field(page, label):
    """Return the input labelled exactly `label` (a label may end with ":" and " *")."""
    return page.get_by_label(re.compile(rf"^{re.escape(label)}:?( \*)?$"))


def sign_in(page, base_url, login):
    page.goto(f"{base_url}/sign-in/")
    page.get_by_label("Username or email").fill(login)
    field(page, "Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/")


def give_extra_group(page, base, user, group: str):
    page.goto(f"{base}/users/{user.pk}/edit/")
    page.get_by_role("checkbox", name=group, exact=True).check()
    field(page, "Update Reason").fill("Cover for a colleague")
    page.get_by_role("button", name=re.compile("^Save")).click()
    page.wait_for_load_state("load")


def test_rules_refuse_a_conflict_and_an_approved_exception_lets_it_through(
    page, browser, live_server, screenshot_dir, admin_user, owner
):
    invoicing = make_role_group(owner, "Invoicing", {"invoices": "full"})
    paying = make_role_group(owner, "Paying", {"payments": "full"})
    make_role_group(owner, "Card runs", {"payment_card_runs": "execute"})
    ivy = make_user(
        owner,
        username="ivy",
        first_name="Ivy",
        last_name="Invoicer",
        role=make_role(owner, "Invoice clerk", [invoicing]),
        privilege_level=3,
    )
    pat = make_user(
        owner,
        username="pat",
        first_name="Patricia Alexandra",
        last_name="Montgomery-Featherstonehaugh",
        role=make_role(owner, "Payments clerk", [paying]),
        privilege_level=3,
    )
    make_user(
        owner,
        username="olga",
        first_name="Olga",
        last_name="Approver",
        grants={"access_requests": "approve", "settings_user_groups": "read"},
    )
    base = live_server.url
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    sign_in(page, base, "admin")

    # The starter rules, offered while there are none.
    page.get_by_role("link", name="Separation of duties").first.click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Separation of duties")
    page.screenshot(path=str(screenshot_dir / "sod-rules-empty.png"), full_page=True)
    page.get_by_role("button", name="Add the starter rules for billing").click()
    expect(page.get_by_role("status")).to_contain_text("5 starter rules added")
    expect(page.get_by_role("rowheader", name=re.compile("Invoicing vs recording"))).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "sod-rules.png"), full_page=True)

    # A rule whose sides overlap: the message stands beside the second side, nothing is saved.
    page.get_by_role("link", name="New rule").click()
    field(page, "Name").fill("Overlapping sides")
    page.get_by_label("First side, area 1", exact=True).select_option("invoices")
    page.get_by_label("Second side, area 1", exact=True).select_option("invoices")
    page.get_by_label("Second side, minimum level 1", exact=True).select_option("read")
    page.get_by_role("button", name="Create rule").click()
    expect(page.locator("#right-errors")).to_contain_text("The two sides overlap (Invoices)")
    page.screenshot(path=str(screenshot_dir / "sod-rule-form-errors.png"), full_page=True)
    assert not SodRule.objects.filter(name="Overlapping sides").exists()

    # A second, conflicting role group on the user edit screen: refused, naming the rule.
    give_extra_group(page, base, ivy, "Paying")
    refusal = page.get_by_role("alert")
    expect(refusal).to_contain_text("Invoicing vs recording payments")
    expect(refusal).to_contain_text("Invoices (full)")
    expect(refusal).to_contain_text("Payments (full)")
    page.screenshot(path=str(screenshot_dir / "sod-refused.png"), full_page=True)
    assert not ivy.extra_role_groups.exists()

    # The impact preview of the matrix shows the same conflict before anything is saved.
    page.goto(f"{base}/access/role-groups/{invoicing.pk}/")
    page.wait_for_load_state("load")
    page.get_by_label("Payments", exact=True).select_option("full")
    page.get_by_role("button", name="Review changes").first.click()
    expect(page.get_by_role("heading", name=re.compile("Separation of duties: 1"))).to_be_visible()
    expect(page.get_by_text("Saving will be refused.")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "sod-impact-preview.png"), full_page=True)

    # A rule that takes exceptions: card payments against card runs.
    page.goto(f"{base}/access/separation-of-duties/")
    page.get_by_role("link", name="Edit Card payments vs card runs").click()
    page.get_by_label("Allow with an approved exception").check()
    field(page, "Reason for the change").fill("Month-end needs cover")
    page.screenshot(path=str(screenshot_dir / "sod-rule-form.png"), full_page=True)
    page.get_by_role("button", name="Save rule").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    assert SodRule.objects.get(name="Card payments vs card runs").effect == "exception"

    give_extra_group(page, base, pat, "Card runs")
    expect(page.get_by_role("alert")).to_contain_text("needs an approved exception")
    assert not pat.extra_role_groups.exists()

    # A second person approves an exception, for the administrator who asked.
    other = browser.new_context()
    try:
        approver = other.new_page()
        sign_in(approver, base, "olga")
        approver.get_by_role("link", name="SoD exceptions").first.click()
        approver.get_by_role("link", name="Grant exception").click()
        field(approver, "Rule").select_option(label="Card payments vs card runs")
        field(approver, "Person").fill("pat")
        field(approver, "Asked by").fill("olga")
        field(approver, "Reason").fill("Covers card runs during the month-end close")
        approver.get_by_role("button", name="Grant exception").click()
        expect(approver.locator(".errorlist")).to_contain_text("someone else asks for it")
        field(approver, "Asked by").fill("admin")
        approver.get_by_role("button", name="Grant exception").click()
        expect(approver.get_by_role("status")).to_contain_text("Exception granted")
        expect(approver.get_by_role("rowheader", name=re.compile("Montgomery"))).to_be_visible()
        approver.screenshot(path=str(screenshot_dir / "sod-exceptions.png"), full_page=True)
        approver.goto(f"{base}/access/separation-of-duties/exceptions/new/")
        approver.screenshot(path=str(screenshot_dir / "sod-exception-form.png"), full_page=True)
    finally:
        other.close()

    # The change now goes through.
    give_extra_group(page, base, pat, "Card runs")
    expect(page.get_by_role("status")).to_contain_text("Saved the changes")
    assert list(pat.extra_role_groups.values_list("name", flat=True)) == ["Card runs"]

    # The report shows the exception; the person's page shows it, and what an IdP was refused.
    with transaction.atomic():
        audit.record(
            AuditAction.SOD_WITHHELD,
            actor_label="Okta",
            target=ivy,
            details="group Paying left out: it would break “Invoicing vs recording payments”",
            context={"withheld": [["group Paying", "Invoicing vs recording payments"]]},
        )
    page.goto(f"{base}/access/separation-of-duties/report/")
    covered = page.locator("section", has_text="Card payments vs card runs").locator(
        "tr", has_text="Montgomery"
    )
    expect(covered).to_contain_text("approved by Olga Approver")
    page.screenshot(path=str(screenshot_dir / "sod-report.png"), full_page=True)
    page.goto(f"{base}/access/users/{pat.pk}/")
    expect(page.locator("#separation-of-duties")).to_contain_text("Card payments vs card runs")
    page.screenshot(path=str(screenshot_dir / "sod-user-permissions.png"))
    page.goto(f"{base}/access/users/{ivy.pk}/")
    expect(page.locator("#separation-of-duties")).to_contain_text("group Paying left out")
    page.screenshot(path=str(screenshot_dir / "sod-user-withheld.png"))
    page.goto(f"{base}/reviews/")
    page.screenshot(path=str(screenshot_dir / "sod-dashboard.png"), full_page=True)
    campaign = reviews.create_campaign(
        actor=admin_user,
        name="Finance review",
        scope_kind=ScopeKind.ALL,
        reviewers=[admin_user],
        due_date=timezone.localdate() + datetime.timedelta(days=7),
    )
    # The campaign's list badges whoever breaks a blocking rule now (the administrator holds
    # everything); Pat's rule takes exceptions, so no badge.
    page.goto(f"{base}/reviews/campaigns/{campaign.pk}/")
    items = page.locator("table.review-items")
    expect(items.locator("tr", has_text="admin")).to_contain_text(
        re.compile(r"Breaks [0-9] blocking rules")
    )
    expect(items.locator("tr", has_text="Montgomery")).not_to_contain_text("Breaks")
    page.screenshot(path=str(screenshot_dir / "sod-campaign-items.png"), full_page=True)
    item = campaign.items.get(user=pat)
    page.goto(f"{base}/reviews/campaigns/{campaign.pk}/items/{item.pk}/")
    expect(page.get_by_role("heading", name="Separation of duties")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "sod-review-item.png"))
    page.goto(f"{base}/access/separation-of-duties/")
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "sod-rules-phone.png"), full_page=True)
    page.goto(f"{base}/access/separation-of-duties/report/")
    page.screenshot(path=str(screenshot_dir / "sod-report-phone.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": 800})

    # It ends by itself: once its end has passed, the report no longer counts it.
    SodException.objects.update(
        created_at=timezone.now() - datetime.timedelta(days=31),
        expires_at=timezone.now() - datetime.timedelta(minutes=1),
    )
    page.goto(f"{base}/access/separation-of-duties/report/")
    expect(
        page.locator("section", has_text="Card payments vs card runs").locator(
            "tr", has_text="Montgomery"
        )
    ).to_contain_text("None")
    page.goto(f"{base}/access/separation-of-duties/exceptions/")
    expect(page.locator("section", has_text="Ended")).to_contain_text("Expired")
    assert [e for e in errors if "Content Security Policy" in e] == []
