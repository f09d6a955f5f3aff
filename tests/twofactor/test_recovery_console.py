"""The recovery console: the account's state first, then several actions in one confirmed step
with one set of identity checks and one reason, all done or none."""

import datetime

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone

from accounts import recovery
from accounts.models import PasswordSetToken
from accounts.twofactor import services as twofactor
from audit.models import AuditEvent
from delivery.models import OutboundEmail
from delivery.worker import run_due
from roles import catalog
from security import lockout
from tests.builders import make_totp_device, make_user
from tests.security.conftest import set_policy

pytestmark = pytest.mark.django_db

CHECKS = {"checked_identity": "on", "checked_email": "on", "checked_request": "on"}
ACTION_EVENTS = (
    "lockout_cleared",
    "totp_reset",
    "sessions_ended",
    "access_email_sent",
    "recovery_code_sent",
)


@pytest.fixture
def support(owner):
    return make_user(
        owner, username="support", grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=8
    )


def lock_out(user):
    for _ in range(10):
        lockout.register_failure(None, user, "wrong_password")
    assert lockout.is_locked(user)


@pytest.fixture
def alice(owner):
    """Locked out, with an authenticator app."""
    user = make_user(owner, username="alice", email="alice@example.test", privilege_level=3)
    make_totp_device(user)
    lock_out(user)
    return user


def url(user) -> str:
    return f"/users/{user.pk}/recovery/"


def events() -> list[str]:
    return sorted(
        AuditEvent.objects.filter(action__in=ACTION_EVENTS).values_list("action", flat=True)
    )


def post(client, user, actions, *, confirmed=True, reason="ticket 31: locked out", **extra):
    data = {**CHECKS, "reason": reason, "action": actions, **extra}
    if confirmed:
        data["confirmed"] = "1"
    return client.post(url(user), data)


def test_the_state_comes_first(signed_in, owner, support, alice):
    set_policy(owner, expiry_days=90)
    alice.last_sign_in_at = timezone.now() - datetime.timedelta(days=2)
    alice.password_changed_at = timezone.now() - datetime.timedelta(days=10)
    alice.save(update_fields=["last_sign_in_at", "password_changed_at"])
    recovery.send_recovery_code(alice, actor=support, reason="ticket 30")
    page = signed_in(support).get(url(alice)).content.decode()
    state = page[page.index("Where the account stands") : page.index("Help this person")]
    assert "Locked out" in state and "until " in state
    assert "Authenticator app (TOTP): set up" in state
    assert "Passkeys and security keys: none" in state
    assert "Backup codes left: 0 of 10" in state  # the builder's device has none
    assert "A recovery code, unused, valid until" in state
    assert "password-set link" not in state
    assert "Expires " in state
    assert "Never" not in state  # signed in two days ago
    assert "Not available" not in page  # locked, enrolled, active: every action applies


def test_a_person_without_factors_lockout_or_sign_in_reads_so(signed_in, owner, support):
    bea = make_user(owner, username="bea", privilege_level=3)
    page = signed_in(support).get(url(bea)).content.decode()
    assert "Not locked" in page and "Never" in page
    assert "Authenticator app (TOTP): none" in page
    assert "Nothing sent and unused" in page
    assert "Set; the policy sets no expiry" in page
    assert "Not available: Clear the sign-in lockout. The account is not locked out." in page
    assert "Not available: Reset two-factor authentication" in page


def test_first_post_asks_to_confirm_and_does_nothing(signed_in, support, alice):
    client = signed_in(support)
    response = post(
        client, alice, [recovery.CONSOLE_CLEAR_LOCKOUT, recovery.CONSOLE_RESET_2FA], confirmed=False
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Check and confirm" in page
    assert page.index("Clear the sign-in lockout") < page.index("Reset two-factor authentication")
    assert 'name="confirmed" value="1"' in page
    assert events() == [] and lockout.is_locked(alice) and twofactor.has_any_device(alice)
    assert not OutboundEmail.objects.exists()
    # "Change" goes back to the form as filled in, still doing nothing.
    response = post(client, alice, [recovery.CONSOLE_CLEAR_LOCKOUT], confirmed=False, edit="1")
    assert "Help this person" in response.content.decode() and events() == []


def test_unlock_reset_and_password_reset_in_one_step(signed_in, support, alice):
    theirs = Client()
    theirs.force_login(alice, backend="accounts.backends.PortalBackend")  # a live session
    lock_out(alice)  # (a sign-in clears the lockout)
    response = post(
        signed_in(support),
        alice,
        [
            recovery.CONSOLE_ACCESS_EMAIL,
            recovery.CONSOLE_RESET_2FA,
            recovery.CONSOLE_CLEAR_LOCKOUT,
        ],
    )
    assert response.status_code == 302
    assert not lockout.is_locked(alice)
    assert not twofactor.has_any_device(alice)
    assert PasswordSetToken.objects.filter(user=alice).usable().count() == 1
    assert theirs.get("/").status_code == 302  # the reset ended her session
    assert events() == ["access_email_sent", "lockout_cleared", "totp_reset"]
    for event in AuditEvent.objects.filter(action__in=ACTION_EVENTS):
        assert event.reason == "ticket 31: locked out" and event.actor_id == support.pk
    run_due()
    subjects = sorted(m.subject for m in mail.outbox)
    assert len(subjects) == 2 and "Billing Access: support acted on your account" in subjects
    notice = next(m for m in mail.outbox if "support acted" in m.subject)
    assert (
        "cleared the sign-in lockout of your account, reset your two-factor authentication and "
        "ended your sessions and sent you an email with a link to set a new password"
    ) in notice.body


def test_end_sessions_beside_a_reset_is_part_of_the_reset(signed_in, support, alice):
    response = post(
        signed_in(support), alice, [recovery.CONSOLE_RESET_2FA, recovery.CONSOLE_END_SESSIONS]
    )
    assert response.status_code == 302
    assert events() == ["totp_reset"]  # no second, empty "sessions ended"


def test_unlock_and_recovery_code_tell_the_user_in_two_emails(signed_in, support, alice):
    response = post(
        signed_in(support), alice, [recovery.CONSOLE_RECOVERY_CODE, recovery.CONSOLE_CLEAR_LOCKOUT]
    )
    assert response.status_code == 302
    assert events() == ["lockout_cleared", "recovery_code_sent"]
    run_due()
    bodies = [m.body for m in mail.outbox]
    assert any("sent you this recovery code" in body for body in bodies)
    notice = next(body for body in bodies if "support" in body and "lockout" in body)
    assert "recovery code" not in notice  # the code's own email says who sent it


def test_refused_without_the_identity_checks(signed_in, support, alice):
    client = signed_in(support)
    data = {
        "checked_identity": "on",
        "reason": "ticket 31",
        "action": [recovery.CONSOLE_CLEAR_LOCKOUT],
        "confirmed": "1",
    }
    response = client.post(url(alice), data)
    assert response.status_code == 400
    assert events() == [] and lockout.is_locked(alice)
    # The service refuses too, whatever door calls it.
    with pytest.raises(ValidationError, match="identity check"):
        recovery.run_console_actions(
            alice,
            actor=support,
            actions=[recovery.CONSOLE_CLEAR_LOCKOUT],
            reason="ticket 31",
            identity_checks=["checked_identity", "checked_email"],
        )
    assert events() == [] and lockout.is_locked(alice)


def test_refused_without_a_reason_or_an_action(signed_in, support, alice):
    client = signed_in(support)
    assert post(client, alice, [recovery.CONSOLE_CLEAR_LOCKOUT], reason=" ").status_code == 400
    response = post(client, alice, [])
    assert response.status_code == 400
    assert "Choose at least one action." in response.content.decode()
    assert events() == [] and lockout.is_locked(alice)


def test_an_unavailable_action_refuses_the_whole_step(support, owner):
    bea = make_user(owner, username="bea", privilege_level=3)  # not locked, no device
    with pytest.raises(ValidationError) as refused:
        recovery.run_console_actions(
            bea,
            actor=support,
            actions=[recovery.CONSOLE_END_SESSIONS, recovery.CONSOLE_CLEAR_LOCKOUT],
            reason="ticket 31",
            identity_checks=recovery.IDENTITY_CHECKS,
        )
    assert "The account is not locked out." in str(refused.value)
    assert events() == [] and not OutboundEmail.objects.exists()


def test_one_failing_action_leaves_nothing_half_done(support, alice, monkeypatch):
    def refuse(*args, **kwargs):
        raise ValidationError("The mail queue refused the message.")

    # The last of the four to run fails after the other three have written their rows.
    monkeypatch.setattr(recovery, "send_recovery_code", refuse)
    with pytest.raises(ValidationError):
        recovery.run_console_actions(
            alice,
            actor=support,
            actions=[
                recovery.CONSOLE_CLEAR_LOCKOUT,
                recovery.CONSOLE_RESET_2FA,
                recovery.CONSOLE_ACCESS_EMAIL,
                recovery.CONSOLE_RECOVERY_CODE,
            ],
            reason="ticket 31",
            identity_checks=recovery.IDENTITY_CHECKS,
        )
    assert lockout.is_locked(alice)
    assert twofactor.has_confirmed_device(alice)
    assert not PasswordSetToken.objects.filter(user=alice).exists()
    assert events() == [] and not OutboundEmail.objects.exists()


def test_a_failure_on_the_screen_is_shown_and_nothing_is_done(
    signed_in, support, alice, monkeypatch
):
    def refuse(*args, **kwargs):
        raise ValidationError("The mail queue refused the message.")

    monkeypatch.setattr(recovery, "send_recovery_code", refuse)
    response = post(
        signed_in(support), alice, [recovery.CONSOLE_CLEAR_LOCKOUT, recovery.CONSOLE_RECOVERY_CODE]
    )
    assert response.status_code == 400
    assert "The mail queue refused the message." in response.content.decode()
    assert lockout.is_locked(alice) and events() == []


def test_an_action_that_stopped_applying_before_the_confirmation_is_refused_plainly(
    signed_in, support, alice
):
    client = signed_in(support)
    assert post(client, alice, [recovery.CONSOLE_CLEAR_LOCKOUT], confirmed=False).status_code == 200
    lockout.reset(alice)  # someone else unlocked her meanwhile
    response = post(client, alice, [recovery.CONSOLE_CLEAR_LOCKOUT, recovery.CONSOLE_END_SESSIONS])
    assert response.status_code == 400
    assert "A chosen action no longer applies to this account" in response.content.decode()
    assert events() == []
