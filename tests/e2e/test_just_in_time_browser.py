"""Browser: an owner with no standing Users full. An administrator eligible for it asks for an
hour of it, the approver gets the email over real SMTP, approves after confirming who they are,
the requester's menu gains Users; the clock moves past the end and the menu loses it again; the
audit log shows the chain."""

import datetime
import re
from unittest import mock

import pytest
from aiosmtpd.controller import Controller
from django.conf import settings as django_settings
from django.contrib.sessions.backends.db import SessionStore
from django.core.management import call_command
from django.utils import timezone

from audit.models import AuditEvent
from portal.stepup import PROOF_AT
from roles import catalog
from roles.models import AccessRequest
from security.models import PasswordPolicy
from tests.builders import PASSWORD, make_role, make_role_group, make_user
from tests.e2e.test_user_admin_browser import Inbox, field, free_port, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def smtp_inbox(settings, live_server):
    """A real SMTP server on 127.0.0.1 (ephemeral port) that the portal sends its mail to."""
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 10},
        }
    }
    settings.PUBLIC_URL = live_server.url
    yield inbox
    controller.stop()


def deliver_mail() -> None:
    """Run the outbox's due tasks when the portal sends mail through one (else mail went out
    when its transaction committed)."""
    try:
        from delivery.worker import run_due
    except ImportError:
        return
    run_due()


def menu_labels(page) -> list[str]:
    return page.locator("nav.sidebar a").all_inner_texts()


def age_the_proof(context, minutes: int) -> None:
    """Make the browser session's last proof of identity `minutes` old (as if signed in then)."""
    key = next(
        c["value"] for c in context.cookies() if c["name"] == django_settings.SESSION_COOKIE_NAME
    )
    session = SessionStore(session_key=key)
    session[PROOF_AT] = (timezone.now() - datetime.timedelta(minutes=minutes)).isoformat()
    session.save()


def test_request_approve_with_step_up_then_the_access_ends_on_time(
    page, browser, live_server, smtp_inbox, owner, admin_user, screenshot_dir
):
    base = live_server.url
    # Sessions outlive the hour the test moves the clock by; the idle timeout is the owner's.
    PasswordPolicy.objects.update_or_create(owner=owner, defaults={"idle_timeout_minutes": 600})
    users_full = make_role_group(owner, "User administration", {catalog.USERS: catalog.FULL})
    everyday = make_role_group(
        owner,
        "Administration (read)",
        {catalog.USER_ACTIVITY: catalog.READ},
    )
    role = make_role(owner, "Administrator", groups=[everyday])
    role.eligible_role_groups.add(users_full)
    ada = make_user(
        owner,
        username="ada",
        first_name="Ada",
        last_name="Admin",
        role=role,
        privilege_level=8,
    )

    requester = browser.new_context()
    try:
        mine = requester.new_page()
        sign_in(mine, base, "ada", PASSWORD)
        labels = menu_labels(mine)
        assert "Request access" in labels and "Users" not in labels

        mine.get_by_role("link", name="My access").first.click()
        assert mine.get_by_role("heading", name="Eligible role groups").is_visible()
        mine.screenshot(path=str(screenshot_dir / "jit-my-access-eligible.png"), full_page=True)

        mine.get_by_role("link", name="Request access").first.click()
        mine.wait_for_url(f"{base}/me/access-requests/new/")
        field(mine, "Hours").fill("9")
        mine.get_by_label("Justification").fill("Onboard the March starters")
        field(mine, "Ticket reference").fill("HR-118")
        mine.get_by_role("button", name="Send request").click()
        assert "between 1 and 8 hours" in mine.locator(".field--invalid").first.inner_text()
        mine.screenshot(path=str(screenshot_dir / "jit-request-refused.png"), full_page=True)
        assert not AccessRequest.objects.exists()

        field(mine, "Hours").fill("1")
        mine.get_by_role("button", name="Send request").click()
        mine.wait_for_url(f"{base}/me/access-requests/")
        assert "sent" in mine.get_by_role("status").inner_text()
        assert "Waiting for approval" in mine.locator("table").inner_text()
        mine.screenshot(path=str(screenshot_dir / "jit-my-requests.png"), full_page=True)
        made = AccessRequest.objects.get()

        # The approver's email, over real SMTP, links to the queue.
        deliver_mail()
        assert len(smtp_inbox.messages) == 1
        recipients, message = smtp_inbox.messages[0]
        assert recipients == [admin_user.email]
        assert "Ada Admin asks for User administration" in message["Subject"]
        body = message.get_body(preferencelist=("plain",)).get_content()
        assert "Onboard the March starters" in body and "HR-118" in body
        queue_url = re.search(r"http://\S+/access/requests/", body).group(0)
        assert queue_url.startswith(base)

        # The approver signed in a while ago: approving asks them to confirm who they are.
        sign_in(page, base, "admin", PASSWORD)
        age_the_proof(page.context, minutes=30)
        page.goto(queue_url)
        assert "Onboard the March starters" in page.locator("table").first.inner_text()
        page.screenshot(path=str(screenshot_dir / "jit-request-queue.png"), full_page=True)
        page.get_by_role("link", name=re.compile("Review and decide")).click()
        page.wait_for_url(f"{base}/access/requests/{made.pk}/")
        assert page.get_by_role("heading", name="Impact on users").is_visible()
        page.screenshot(path=str(screenshot_dir / "jit-request-decide.png"), full_page=True)
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(re.compile(r"/me/confirm/"))
        assert "Confirm it is you" in page.get_by_role("heading", level=1).inner_text()
        field(page, "Your password").fill(PASSWORD)
        page.get_by_role("button", name="Continue").click()
        page.wait_for_url(f"{base}/access/requests/{made.pk}/")
        made.refresh_from_db()
        assert made.state == "pending"  # nothing was approved before the proof
        page.get_by_role("button", name="Approve").click()
        page.wait_for_url(f"{base}/access/requests/")
        assert "Approved: Ada Admin holds User administration" in (
            page.get_by_role("status").inner_text()
        )
        made.refresh_from_db()
        assert made.state == "approved" and made.ends_at - made.starts_at == datetime.timedelta(
            hours=1
        )
        page.goto(f"{base}/access/elevations/")
        assert "User administration" in page.locator("table").first.inner_text()
        page.screenshot(path=str(screenshot_dir / "jit-active-elevations.png"), full_page=True)
        page.get_by_role("link", name=re.compile("End now")).click()
        page.screenshot(path=str(screenshot_dir / "jit-elevation-end.png"), full_page=True)
        page.goto(f"{base}/reviews/")
        tiles = page.locator(".tile").all_inner_texts()
        assert any("Active elevations" in t and "1" in t for t in tiles)
        page.screenshot(path=str(screenshot_dir / "jit-reviewer-dashboard.png"), full_page=True)
        # Where eligibility is set: the role, and one user's permissions.
        page.goto(f"{base}/access/roles/{role.pk}/")
        page.screenshot(path=str(screenshot_dir / "jit-role-eligible.png"), full_page=True)
        page.goto(f"{base}/access/users/{ada.pk}/")
        assert page.get_by_role("heading", name="Eligible role groups").is_visible()
        page.locator("#eligibility").scroll_into_view_if_needed()
        page.screenshot(path=str(screenshot_dir / "jit-user-eligibility.png"))
        page.get_by_role("link", name="Make eligible for a role group").click()
        page.screenshot(path=str(screenshot_dir / "jit-eligibility-form.png"), full_page=True)

        # The requester's next page has Users in the menu, and the Users screen opens.
        mine.goto(f"{base}/")
        assert "Users" in menu_labels(mine)
        mine.goto(f"{base}/me/access/")
        assert "elevation until" in mine.locator("main").inner_text()
        mine.screenshot(path=str(screenshot_dir / "jit-my-access-elevated.png"), full_page=True)
        assert mine.goto(f"{base}/users/").status == 200
        deliver_mail()
        assert len(smtp_inbox.messages) == 2  # the requester is told it was approved
        assert smtp_inbox.messages[1][0] == [ada.email]

        # An hour later the access is gone at the next request: no job ran in between.
        after = made.ends_at + datetime.timedelta(minutes=1)
        with mock.patch("django.utils.timezone.now", return_value=after):
            mine.goto(f"{base}/")
            assert "Users" not in menu_labels(mine)
            assert mine.goto(f"{base}/users/").status == 403
            mine.goto(f"{base}/me/access-requests/")
            assert "Expired" in mine.locator("table").inner_text()

            call_command("record_elevation_events")
            # An emergency account also sees the break-glass form.
            type(ada).objects.filter(pk=ada.pk).update(is_emergency_account=True)
            mine.goto(f"{base}/me/access-requests/new/")
            assert mine.get_by_role("heading", name="Emergency access").is_visible()
            mine.screenshot(path=str(screenshot_dir / "jit-request-form.png"), full_page=True)
            page.goto(f"{base}/activity/changes/?q=ada")
            log = page.locator("main").inner_text()
            page.screenshot(path=str(screenshot_dir / "jit-audit-chain.png"), full_page=True)
    finally:
        requester.close()

    chain = list(
        AuditEvent.objects.filter(subject_user_id=ada.pk)
        .exclude(action__in=["sign_in", "step_up"])
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert chain == [
        "access_requested",
        "access_approved",
        "elevation_activated",
        "elevation_expired",
    ]
    for label in ("Access requested", "Access request approved", "Elevation expired"):
        assert label in log
