"""Browser: an administrator creates a user, the access email goes through a real SMTP server, the
person sets a password from the emailed link and signs in; deactivation ends a live session."""

import email
import re
import socket
from email import policy

import pytest
from aiosmtpd.controller import Controller

from accounts.models import User
from audit.models import AuditEvent
from delivery.worker import run_due
from tests.builders import PASSWORD, make_department, make_update_reason, make_user

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

NEW_PASSWORD = "a fresh passphrase for nora"


class Inbox:
    """An aiosmtpd handler that keeps every message it receives."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(
            (envelope.rcpt_tos, email.message_from_bytes(envelope.content, policy=policy.default))
        )
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def field(page, label):
    """Return the input labelled exactly `label` (a label may end with ":" and " *")."""
    return page.get_by_label(re.compile(rf"^{re.escape(label)}:?( \*)?$"))


def sign_in(page, base_url, login, password):
    page.goto(f"{base_url}/sign-in/")
    page.get_by_label("Username or email").fill(login)
    field(page, "Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{base_url}/")


def test_create_user_send_access_email_set_password_and_sign_in(
    page, browser, live_server, smtp_inbox, admin_user, owner, screenshot_dir
):
    make_department(owner, "Finance")
    make_department(owner, "Sales")
    for n in range(12):
        make_user(
            owner,
            username=f"colleague{n:02d}",
            first_name=f"Colleague {n:02d}",
            last_name="Example",
        )
    base = live_server.url
    sign_in(page, base, "admin", PASSWORD)

    page.get_by_role("link", name="Users").first.click()
    page.wait_for_url(f"{base}/users/")
    page.get_by_role("link", name="New user").click()
    field(page, "First name").fill("Nora")
    field(page, "Last name").fill("Newcomer")
    field(page, "Username").fill("nora")
    field(page, "Email address").fill("nora@example.test")
    field(page, "Time zone").select_option("Europe/London")
    page.get_by_label("Finance").check()
    page.get_by_role("button", name="Create user").click()
    page.wait_for_url(re.compile(r"/users/\d+/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Nora Newcomer"
    nora = User.objects.get(username="nora")
    assert not nora.has_usable_password()

    page.get_by_text("Actions", exact=True).click()
    page.get_by_role("link", name="Send access email").click()
    page.get_by_role("button", name="Send access email").click()
    page.wait_for_url(f"{base}/users/{nora.pk}/")
    assert "Access email sent to nora@example.test" in page.get_by_role("status").inner_text()
    assert "set-password" not in page.content()  # staff never see the link
    page.screenshot(path=str(screenshot_dir / "user-record.png"), full_page=True)

    run_due()  # the worker sends the outbox's email
    assert len(smtp_inbox.messages) == 1
    recipients, message = smtp_inbox.messages[0]
    assert recipients == ["nora@example.test"]
    body = message.get_body(preferencelist=("plain",)).get_content()
    assert "Your login name: nora" in body
    link = re.search(r"http://\S+/set-password/\S+/", body).group(0)
    assert link.startswith(base)

    person = browser.new_context()
    try:
        own = person.new_page()
        own.goto(link)
        own.wait_for_url(f"{base}/set-password/")  # the token leaves the address bar
        field(own, "New password").fill("short")
        field(own, "New password again").fill("short")
        own.get_by_role("button", name="Set password").click()
        assert "at least" in own.locator(".errorlist").first.inner_text()
        field(own, "New password").fill(NEW_PASSWORD)
        field(own, "New password again").fill(NEW_PASSWORD)
        own.get_by_role("button", name="Set password").click()
        own.wait_for_url(f"{base}/sign-in/")
        assert "Your password is set" in own.get_by_role("status").inner_text()

        own.goto(link)  # single use
        assert own.get_by_role("heading", level=1).inner_text() == "This link cannot be used"

        sign_in(own, base, "nora", NEW_PASSWORD)
        assert own.get_by_role("heading", level=1).inner_text() == "Welcome, Nora"
    finally:
        person.close()

    actions = list(
        AuditEvent.objects.filter(subject_user_id=nora.pk)
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["user_created", "access_email_sent", "password_set", "sign_in"]

    page.goto(f"{base}/users/")
    page.screenshot(path=str(screenshot_dir / "users-list.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "users-list-phone.png"), full_page=True)


def test_deactivation_ends_a_live_session_at_its_next_request(
    page, browser, live_server, admin_user, owner, screenshot_dir
):
    make_update_reason(owner, "Leaver")
    leaver = make_user(owner, username="lee", first_name="Lee", last_name="Leaver")
    base = live_server.url

    other = browser.new_context()
    try:
        theirs = other.new_page()
        sign_in(theirs, base, "lee", PASSWORD)
        assert theirs.get_by_role("heading", level=1).inner_text() == "Welcome, Lee"

        sign_in(page, base, "admin", PASSWORD)
        page.goto(f"{base}/users/{leaver.pk}/")
        page.get_by_text("Actions", exact=True).click()
        page.get_by_role("link", name="Deactivate").click()
        page.get_by_label("Update Reason").select_option(label="Leaver")
        page.get_by_role("button", name="Deactivate").click()
        page.wait_for_url(f"{base}/users/{leaver.pk}/")
        assert "is deactivated" in page.get_by_role("status").inner_text()
        page.screenshot(path=str(screenshot_dir / "user-deactivated.png"), full_page=True)

        # Their page is still on screen until they ask for anything.
        assert theirs.get_by_role("heading", level=1).inner_text() == "Welcome, Lee"
        theirs.get_by_role("link", name="My access").first.click()
        theirs.wait_for_url(re.compile(r"/sign-in/"))
        assert theirs.get_by_role("heading", level=1).inner_text() == "Sign in"
    finally:
        other.close()
    event = AuditEvent.objects.filter(action="user_deactivated").get()
    assert (event.subject_user_id, event.reason) == (leaver.pk, "Leaver")
