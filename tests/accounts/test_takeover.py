"""Account-takeover signals: a sign-in from a new browser family or country is emailed over real
SMTP (and a repeat is not); password, email address and authenticator changes are emailed;
each is audited; the owner can turn the new-device email off."""

import socket

import pytest
from aiosmtpd.controller import Controller
from django.test import Client

from accounts import users
from accounts.choices import AccessSource
from accounts.takeover import services as takeover
from accounts.takeover.models import KnownSignIn
from audit.models import AuditEvent
from delivery.models import OutboundEmail
from delivery.worker import run_due
from security import services as security_services
from tests.builders import PASSWORD, make_user
from tests.security.conftest import post_sign_in, set_policy

pytestmark = pytest.mark.django_db

FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:132.0) Gecko/20100101 Firefox/132.0"
FIREFOX_NEWER = FIREFOX.replace("132.0", "133.0")
SAFARI_IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1"
)
UK = "81.2.69.142"
UK_TOO = "81.2.69.160"
US = "8.8.8.8"


class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 Message accepted"


@pytest.fixture
def smtp(settings):
    """A real SMTP server on localhost; the portal's mailer points at it for the test."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": port, "timeout": 5},
        }
    }
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def pat(owner):
    return make_user(owner, username="pat", email="pat@example.test", first_name="Pat")


def sign_in(agent: str, ip: str = "127.0.0.1") -> None:
    response = post_sign_in(Client(), "pat", HTTP_USER_AGENT=agent, REMOTE_ADDR=ip)
    assert response.status_code == 302


def signals():
    return list(AuditEvent.objects.filter(action="unfamiliar_sign_in").order_by("seq"))


def test_device_family_leaves_the_version_out():
    assert takeover.device_family(FIREFOX) == "Firefox on Windows"
    assert takeover.device_family(FIREFOX_NEWER) == "Firefox on Windows"
    assert takeover.device_family(SAFARI_IPHONE) == "Safari on iPhone"
    assert takeover.device_family("") == ""


def test_country_of_an_address():
    assert takeover.country_of(UK) == "United Kingdom"
    assert takeover.country_of("127.0.0.1") == ""
    assert takeover.country_of("10.1.2.3") == ""


def test_a_new_browser_is_emailed_over_smtp_and_a_repeat_is_not(smtp, pat):
    sign_in(FIREFOX)  # the first sign-in sets what is familiar
    run_due()
    assert smtp.messages == [] and signals() == []
    sign_in(FIREFOX_NEWER)  # an update of the same browser is the same device
    run_due()
    assert smtp.messages == []

    sign_in(SAFARI_IPHONE)
    assert smtp.messages == []  # the outbox's worker sends it, not the request
    run_due()
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["pat@example.test"]
    assert "new sign-in on Safari on iPhone" in message
    assert "http://127.0.0.1:8000/me/sessions/" in message.replace("=\n", "")
    [event] = signals()
    assert event.subject_user_id == pat.pk
    assert event.context["new_device"] is True and event.context["new_country"] is False
    assert event.context["device"] == "Safari on iPhone" and event.context["emailed"] is True

    sign_in(SAFARI_IPHONE)  # the same again: familiar now
    run_due()
    assert len(smtp.messages) == 1 and len(signals()) == 1
    assert set(KnownSignIn.objects.filter(user=pat).values_list("value", flat=True)) == {
        "Firefox on Windows",
        "Safari on iPhone",
    }


def test_a_new_country_is_emailed(pat):
    sign_in(FIREFOX, UK)
    sign_in(FIREFOX, UK_TOO)
    assert signals() == []
    sign_in(FIREFOX, US)
    [event] = signals()
    assert event.context["new_country"] is True and event.context["country"] == "United States"
    email = OutboundEmail.objects.get(to="pat@example.test")
    assert email.subject == "Billing Access: new sign-in from United States"


def test_the_owner_can_turn_the_new_device_email_off(owner, pat):
    set_policy(owner, notify_new_sign_in=False)
    sign_in(FIREFOX)
    sign_in(SAFARI_IPHONE)
    [event] = signals()  # still recorded
    assert event.context["emailed"] is False
    assert not OutboundEmail.objects.filter(to="pat@example.test").exists()


def test_a_password_change_is_emailed_with_a_link_to_the_sessions(pat):
    security_services.set_password(
        pat, "a brand new long passphrase", actor=pat, via=security_services.PasswordVia.SELF
    )
    email = OutboundEmail.objects.get(to="pat@example.test")
    assert email.subject == "Billing Access: your password was changed"
    assert "/me/sessions/" in email.body
    notice = AuditEvent.objects.get(action="security_notice_sent")
    assert notice.context["change"] == "password" and notice.subject_user_id == pat.pk


def test_an_email_change_is_told_to_the_old_address_too(owner, pat):
    admin = make_user(owner, username="adm", grants={"users": "full"}, privilege_level=10)
    users.update_user(
        pat,
        actor=admin,
        data={"email": "pat.new@example.test"},
        reason="Correction",
        source=AccessSource.SCREEN,
    )
    sent = {email.to: email for email in OutboundEmail.objects.all()}
    assert set(sent) == {"pat@example.test", "pat.new@example.test"}
    body = sent["pat@example.test"].body
    assert "from pat@example.test to pat.new@example.test" in body and "by " in body
    assert AuditEvent.objects.get(action="security_notice_sent").context["emails"] == 2


def test_signing_in_stays_quiet_when_nothing_is_new(pat):
    sign_in(FIREFOX)
    for _ in range(3):
        sign_in(FIREFOX)
    assert signals() == []
    assert OutboundEmail.objects.count() == 0
    assert PASSWORD  # the builders' password signed in every time
