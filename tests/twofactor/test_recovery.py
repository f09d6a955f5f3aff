"""Recovery: staff email a code over real SMTP; the user spends it once on the public page."""

import re
import socket

import pytest
from aiosmtpd.controller import Controller
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.core.exceptions import PermissionDenied, ValidationError
from django.test import Client

from accounts import recovery
from accounts.twofactor import services as twofactor
from accounts.twofactor.models import RecoveryCode
from audit.models import AuditEvent
from delivery.worker import run_due
from roles import catalog
from tests.access_helpers import assert_screen_access
from tests.builders import PASSWORD, make_owner, make_totp_device, make_user
from tests.twofactor.conftest import proved_client

pytestmark = pytest.mark.django_db

CODE_RE = re.compile(r"\b([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})\b")
NEW_PASSWORD = "correct horse battery staple recovered"


class Inbox:
    """An SMTP server's mailbox: every message it accepted, as text."""

    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.rcpt_tos, envelope.content.decode("utf-8", "replace")))
        return "250 Message accepted"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def smtp(settings):
    """A real SMTP server on localhost; the portal's mailer points at it for the test."""
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.MAILERS = {
        "default": {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {"host": "127.0.0.1", "port": controller.port, "timeout": 5},
        }
    }
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture
def support(owner):
    return make_user(
        owner, username="support", grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=8
    )


@pytest.fixture
def alice(owner):
    user = make_user(owner, username="alice", email="alice@example.test", privilege_level=3)
    make_totp_device(user)
    return user


def emailed_code(text: str) -> str:
    body = text.replace("=\n", "")
    return CODE_RE.search(body).group(1)


def send_code(support, user, reason="ticket 7: lost phone") -> str:
    outbox_before = len(mail.outbox)
    recovery.send_recovery_code(user, actor=support, reason=reason)
    run_due()  # the worker sends the outbox's email
    return emailed_code(mail.outbox[outbox_before].body)


def recover(client, email, code):
    return client.post("/recover/", {"email": email, "code": code})


def test_staff_sends_code_over_smtp_and_user_removes_2fa_with_it(smtp, support, alice, clock):
    theirs = Client()
    theirs.force_login(alice, backend="accounts.backends.PortalBackend")

    staff = proved_client(support)
    response = staff.post(
        f"/users/{alice.pk}/recovery/",
        {
            "checked_identity": "on",
            "checked_email": "on",
            "checked_request": "on",
            "reason": "ticket 7: lost phone",
            "action": recovery.CONSOLE_RECOVERY_CODE,
            "confirmed": "1",
        },
    )
    assert response.status_code == 302
    assert smtp.messages == []  # nothing is sent inside the request: the worker sends it
    run_due()
    assert len(smtp.messages) == 1
    recipients, message = smtp.messages[0]
    assert recipients == ["alice@example.test"]
    code = emailed_code(message)
    assert "support" in message  # who sent it
    # Staff never see the code: not on their page, not in the audit log.
    console = staff.get(f"/users/{alice.pk}/recovery/").content.decode()
    assert code not in console
    sent = AuditEvent.objects.get(action="recovery_code_sent")
    assert sent.actor_id == support.pk and sent.reason == "ticket 7: lost phone"
    assert code not in str(sent.context) and code.replace("-", "") not in str(sent.context)
    stored = RecoveryCode.objects.get(user=alice)
    assert code not in stored.digest and code.replace("-", "") not in stored.digest

    client = Client()
    response = recover(client, "ALICE@example.test", code.upper())
    assert response.status_code == 302 and response.url == "/recover/choose/"
    page = client.get("/recover/choose/").content.decode()
    assert "Set a new password" in page and "Remove my two-factor device" in page
    response = client.post("/recover/choose/", {"action": "remove_2fa"})
    assert response.status_code == 302 and response.url == "/sign-in/"
    assert not twofactor.has_confirmed_device(alice)
    assert SESSION_KEY not in client.session  # recovery never signs in
    assert theirs.get("/").status_code == 302  # every session of hers ended
    used = AuditEvent.objects.get(action="recovery_code_used")
    assert used.subject_user_id == alice.pk and used.context["action"] == "remove_2fa"
    assert AuditEvent.objects.filter(action="totp_removed", subject_user_id=alice.pk).exists()
    run_due()
    assert len(smtp.messages) == 2  # and she is told what happened

    # The code is refused afterwards.
    clock.advance(minutes=1)
    response = recover(Client(), "alice@example.test", code)
    assert response.status_code == 400
    assert recovery.GENERIC_REFUSAL in response.content.decode()
    assert AuditEvent.objects.filter(action="recovery_code_failed").last().reason == "used"


def test_expired_code_is_refused(settings, support, alice, clock):
    settings.RECOVERY_CODE_MINUTES = 30
    code = send_code(support, alice)
    clock.advance(minutes=30, seconds=1)
    response = recover(Client(), "alice@example.test", code)
    assert response.status_code == 400
    assert recovery.GENERIC_REFUSAL in response.content.decode()
    assert AuditEvent.objects.get(action="recovery_code_failed").reason == "expired"


def test_code_lifetime_comes_from_settings(settings, support, alice, clock):
    settings.RECOVERY_CODE_MINUTES = 5
    code = send_code(support, alice)
    clock.advance(minutes=4)
    assert recover(Client(), "alice@example.test", code).status_code == 302
    clock.advance(minutes=2)
    assert recover(Client(), "alice@example.test", code).status_code == 400


def test_double_submit_does_one_thing_once(support, alice, clock):
    code = send_code(support, alice)
    checked = recovery.check_recovery_code("alice@example.test", code, ip="192.0.2.1")
    recovery.use_recovery_code(checked.code_id, action=recovery.ACTION_REMOVE_2FA)
    with pytest.raises(recovery.RecoveryRefused):
        recovery.use_recovery_code(checked.code_id, action=recovery.ACTION_REMOVE_2FA)
    with pytest.raises(recovery.RecoveryRefused):
        recovery.use_recovery_code(
            checked.code_id, action=recovery.ACTION_PASSWORD, new_password=NEW_PASSWORD
        )
    assert AuditEvent.objects.filter(action="recovery_code_used").count() == 1
    assert AuditEvent.objects.filter(action="totp_removed").count() == 1
    alice.refresh_from_db()
    assert alice.check_password(PASSWORD)


def test_double_submit_on_the_page(support, alice, clock):
    code = send_code(support, alice)
    client = Client()
    recover(client, "alice@example.test", code)
    first = client.post(
        "/recover/choose/",
        {"action": "password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert first.status_code == 302
    again = client.post(
        "/recover/choose/",
        {"action": "password", "new_password1": "x" * 20, "new_password2": "x" * 20},
    )
    assert again.status_code == 302 and again.url == "/recover/"
    alice.refresh_from_db()
    assert alice.check_password(NEW_PASSWORD)
    assert AuditEvent.objects.filter(action="password_set").count() == 1


def test_another_users_code_does_nothing(support, alice, owner, clock):
    bob = make_user(owner, username="bob", email="bob@example.test", privilege_level=3)
    make_totp_device(bob)
    code = send_code(support, alice)
    response = recover(Client(), "bob@example.test", code)
    assert response.status_code == 400
    assert twofactor.has_confirmed_device(bob) and twofactor.has_confirmed_device(alice)
    event = AuditEvent.objects.get(action="recovery_code_failed")
    assert event.subject_user_id == bob.pk and event.reason == "wrong_code"


def test_unknown_email_behaves_like_a_wrong_code(support, alice, clock):
    send_code(support, alice)
    wrong = recover(Client(), "alice@example.test", "aaaa-bbbb-cccc")
    unknown = recover(Client(), "nobody@example.test", "aaaa-bbbb-cccc")
    assert wrong.status_code == unknown.status_code == 400

    def alert(response):
        return re.search(r'role="alert">(.*?)</div>', response.content.decode(), re.S).group(1)

    assert alert(wrong) == alert(unknown)
    reasons = list(
        AuditEvent.objects.filter(action="recovery_code_failed")
        .order_by("id")
        .values_list("reason", flat=True)
    )
    assert reasons == ["wrong_code", "unknown_email"]


def test_wrong_codes_are_throttled_per_user(support, alice, clock):
    code = send_code(support, alice)
    for n in range(recovery.FREE_ATTEMPTS):
        elsewhere = Client(REMOTE_ADDR=f"198.51.100.{n}")
        assert recover(elsewhere, "alice@example.test", "x").status_code == 400
    # Now even the right code from a fresh address waits.
    response = recover(Client(REMOTE_ADDR="198.51.100.99"), "alice@example.test", code)
    assert response.status_code == 400
    assert recovery.THROTTLED in response.content.decode()
    clock.advance(minutes=1, seconds=1)
    assert recover(Client(), "alice@example.test", code).status_code == 302


def test_wrong_codes_are_throttled_per_address(support, alice, owner, clock):
    code = send_code(support, alice)
    client = Client(REMOTE_ADDR="203.0.113.5")
    for n in range(recovery.FREE_ATTEMPTS):
        recover(client, f"someone{n}@example.test", "aaaa-bbbb-cccc")
    response = recover(client, "alice@example.test", code)
    assert recovery.THROTTLED in response.content.decode()
    assert recover(Client(REMOTE_ADDR="203.0.113.6"), "alice@example.test", code).status_code == 302


def test_new_password_follows_policy_and_next_sign_in_still_asks_for_the_code(
    support, alice, clock
):
    code = send_code(support, alice)
    client = Client()
    recover(client, "alice@example.test", code)
    short = client.post(
        "/recover/choose/",
        {"action": "password", "new_password1": "short", "new_password2": "short"},
    )
    assert short.status_code == 400 and "at least" in short.content.decode()
    assert RecoveryCode.objects.get(user=alice).used_at is None
    done = client.post(
        "/recover/choose/",
        {"action": "password", "new_password1": NEW_PASSWORD, "new_password2": NEW_PASSWORD},
    )
    assert done.status_code == 302 and done.url == "/sign-in/"
    assert SESSION_KEY not in client.session
    response = client.post("/sign-in/", {"login": "alice", "password": NEW_PASSWORD})
    assert response.status_code == 302 and response.url == "/sign-in/verify/"
    assert SESSION_KEY not in client.session


def test_sso_users_cannot_set_a_local_password(support, owner, clock):
    carol = make_user(owner, username="carol", auth_source="saml", privilege_level=3)
    code = send_code(support, carol)
    checked = recovery.check_recovery_code(carol.email, code, ip="192.0.2.1")
    with pytest.raises(recovery.RecoveryRefused):
        recovery.use_recovery_code(
            checked.code_id, action=recovery.ACTION_PASSWORD, new_password=NEW_PASSWORD
        )
    client = Client()
    recover(client, carol.email, code)
    assert "Set a new password" not in client.get("/recover/choose/").content.decode()


def test_sending_needs_full_data_protection_access(owner, alice):
    reader = make_user(owner, grants={catalog.DP_ACCESS: catalog.READ}, privilege_level=8)
    with pytest.raises(PermissionDenied):
        recovery.send_recovery_code(alice, actor=reader, reason="ticket")
    with pytest.raises(ValidationError):
        recovery.send_recovery_code(
            alice,
            actor=make_user(owner, grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=8),
            reason=" ",
        )
    assert not RecoveryCode.objects.exists()
    assert not mail.outbox


def test_a_new_code_supersedes_the_previous_one(support, alice, clock):
    first = send_code(support, alice)
    second = send_code(support, alice)
    assert recover(Client(), "alice@example.test", first).status_code == 400
    assert recover(Client(), "alice@example.test", second).status_code == 302


class TestConsole:
    def test_access(self, signed_in, owner, support, alice):
        url = f"/users/{alice.pk}/recovery/"
        plain = make_user(owner, privilege_level=8)
        assert_screen_access(signed_in, [url], allowed=support, denied=plain)
        stranger = make_user(make_owner())
        assert signed_in(support).get(f"/users/{stranger.pk}/recovery/").status_code == 404
        page = signed_in(support).get(url)
        assert page.status_code == 200
        assert "Identity checks" in page.content.decode()

    def test_checklist_and_reason_are_required(self, signed_in, support, alice):
        client = signed_in(support)
        response = client.post(
            f"/users/{alice.pk}/recovery/",
            {
                "checked_identity": "on",
                "reason": "ticket",
                "action": "end_sessions",
                "confirmed": "1",
            },
        )
        assert response.status_code == 400
        assert not AuditEvent.objects.filter(action="sessions_ended").exists()

    def test_end_sessions_and_the_user_is_told(self, signed_in, support, alice):
        theirs = Client()
        theirs.force_login(alice, backend="accounts.backends.PortalBackend")
        response = signed_in(support).post(
            f"/users/{alice.pk}/recovery/",
            {
                "checked_identity": "on",
                "checked_email": "on",
                "checked_request": "on",
                "reason": "suspicious sign-in, ticket 9",
                "action": recovery.CONSOLE_END_SESSIONS,
                "confirmed": "1",
            },
        )
        assert response.status_code == 302
        assert theirs.get("/").status_code == 302
        event = AuditEvent.objects.get(action="sessions_ended")
        assert event.reason == "suspicious sign-in, ticket 9" and event.actor_id == support.pk
        run_due()
        (notice,) = mail.outbox
        assert notice.to == ["alice@example.test"]
        assert "ended every session" in notice.body and support.label in notice.body

    def test_reset_2fa_from_the_console(self, signed_in, support, alice):
        response = signed_in(support).post(
            f"/users/{alice.pk}/recovery/",
            {
                "checked_identity": "on",
                "checked_email": "on",
                "checked_request": "on",
                "reason": "new phone",
                "action": recovery.CONSOLE_RESET_2FA,
                "confirmed": "1",
            },
        )
        assert response.status_code == 302
        assert not twofactor.has_confirmed_device(alice)
        assert AuditEvent.objects.filter(action="totp_reset").count() == 1
        run_due()
        assert "reset your two-factor" in mail.outbox[0].body

    def test_no_escalation(self, signed_in, owner, support):
        boss = make_user(owner, privilege_level=9)
        response = signed_in(support).post(
            f"/users/{boss.pk}/recovery/",
            {
                "checked_identity": "on",
                "checked_email": "on",
                "checked_request": "on",
                "reason": "x",
                "action": recovery.CONSOLE_END_SESSIONS,
                "confirmed": "1",
            },
        )
        assert response.status_code in (400, 403)
        assert not AuditEvent.objects.filter(action="sessions_ended").exists()
        assert not mail.outbox


class TestConsoleWithOtherServices:
    def _post(self, client, user, action):
        return client.post(
            f"/users/{user.pk}/recovery/",
            {
                "checked_identity": "on",
                "checked_email": "on",
                "checked_request": "on",
                "reason": "ticket 12",
                "action": action,
                "confirmed": "1",
            },
        )

    def test_clear_lockout_is_offered_only_when_locked(self, signed_in, support, alice):
        from security import lockout

        client = signed_in(support)
        assert self._post(client, alice, recovery.CONSOLE_CLEAR_LOCKOUT).status_code == 400
        for _ in range(10):
            lockout.register_failure(None, alice, "wrong_password")
        assert lockout.is_locked(alice)
        assert self._post(client, alice, recovery.CONSOLE_CLEAR_LOCKOUT).status_code == 302
        assert not lockout.is_locked(alice)
        assert AuditEvent.objects.get(action="lockout_cleared").reason == "ticket 12"
        run_due()
        assert "cleared the sign-in lockout" in mail.outbox[-1].body

    def test_access_email(self, signed_in, support, alice):
        response = self._post(signed_in(support), alice, recovery.CONSOLE_ACCESS_EMAIL)
        assert response.status_code == 302
        assert AuditEvent.objects.filter(action="access_email_sent").count() == 1
        run_due()
        assert [m.to for m in mail.outbox] == [["alice@example.test"], ["alice@example.test"]]


def test_code_email_gives_the_expiry_in_the_users_time_zone(support, owner, clock):
    bea = make_user(owner, username="bea", time_zone="Asia/Tokyo", privilege_level=3)
    send_code(support, bea)
    assert "22 Nov 2026 at 19:30 JST" in mail.outbox[-1].body  # 10:00 UTC + 30 min


def test_code_email_names_the_staff_member_and_the_organisation(owner):
    sam = make_user(
        owner,
        username="sam",
        first_name="Sam",
        last_name="Support",
        grants={catalog.DP_ACCESS: catalog.FULL},
        privilege_level=8,
    )
    bea = make_user(owner, username="bea", privilege_level=3)
    send_code(sam, bea)
    body = mail.outbox[-1].body
    assert f"Sam Support at {owner.name} sent you this recovery code" in body
    assert "of support" not in body
