"""Two-factor sign-in: enrol a TOTP device, verify the second step, backup codes, removal and reset.

Sign-in with a confirmed device happens in two steps. The password page calls
`start_second_step(request, user, next_url=…)` once the password is accepted: the session (with a
new key) then holds only the pending user id and the time, for `PENDING_SECONDS`, and the person
is sent to the verification page, which calls `complete_sign_in` after a good TOTP or backup
code. Nothing else is reachable in between: the pending state is not a session of the user.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q
from django.shortcuts import redirect, resolve_url
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

import audit
from audit.choices import AuditAction
from portal import stepup
from portal.reasons import required_reason
from roles import catalog, permissions
from roles.guards import check_can_manage_user
from security import lockout
from security import services as security_services
from security.services import password_expired

from ..choices import AuthSource, UserKind
from ..passkeys import policy as passkey_policy
from ..takeover import services as takeover
from .models import BackupCode, BackupCodeDevice, TOTPDevice, new_code

logger = logging.getLogger(__name__)

PENDING_KEY = "twofactor_pending"
VERIFIED_SESSION_KEY = "twofactor_device"  # this session's user has a confirmed device
PENDING_SECONDS = 5 * 60
BACKUP_CODE_COUNT = 10
BACKUP_CODES_LOW = 3

METHOD_TOTP = "password+totp"
METHOD_BACKUP_CODE = "password+backup_code"
METHOD_PASSKEY = "password+passkey"
# The second factor each method records on the sign-in event.
SECOND_FACTORS = {METHOD_TOTP: "totp", METHOD_BACKUP_CODE: "backup_code", METHOD_PASSKEY: "passkey"}


class TwoFactorRefused(ValidationError):
    """A code or a request about a device was refused; the message is safe to show."""


@dataclass(frozen=True)
class Status:
    """What the security tab shows about a person's second factor."""

    enrolled: bool
    confirmed_at: object
    last_used_at: object
    backup_codes_remaining: int
    required: bool
    passkeys: int = 0

    @property
    def any_factor(self) -> bool:
        """Say whether the person holds any second factor (an app or a passkey)."""
        return self.enrolled or self.passkeys > 0

    @property
    def backup_codes_low(self) -> bool:
        return self.enrolled and self.backup_codes_remaining <= BACKUP_CODES_LOW


# Reading state -----------------------------------------------------------------------------


def confirmed_device(user) -> TOTPDevice | None:
    """Return the user's confirmed TOTP device, or None."""
    return TOTPDevice.objects.filter(user=user, confirmed=True).first()


def has_confirmed_device(user) -> bool:
    return TOTPDevice.objects.filter(user=user, confirmed=True).exists()


def has_second_factor(user) -> bool:
    """Say whether the user holds a confirmed authenticator app or a passkey."""
    return has_confirmed_device(user) or passkey_policy.has_passkey(user)


def has_any_device(user) -> bool:
    """Say whether the user holds anything a reset would remove (an app, even unconfirmed, or
    a passkey)."""
    return TOTPDevice.objects.filter(user=user).exists() or passkey_policy.has_passkey(user)


def is_required(user) -> bool:
    """Say whether the owner's policy makes two-factor sign-in compulsory for this user."""
    from security.validators import policy_for

    return bool(policy_for(user).require_2fa)


def status(user) -> Status:
    """Return the two-factor state of `user` for the security tab (4 queries at most)."""
    device = confirmed_device(user)
    remaining = 0
    if device is not None:
        remaining = BackupCode.objects.filter(device__user=user, used_at__isnull=True).count()
    return Status(
        enrolled=device is not None,
        confirmed_at=getattr(device, "confirmed_at", None),
        last_used_at=getattr(device, "last_used_at", None),
        backup_codes_remaining=remaining,
        required=is_required(user),
        passkeys=passkey_policy.credentials().filter(user_id=user.pk, confirmed=True).count(),
    )


def enrolment_impact(owner, actor) -> security_services.EnrolmentImpact:
    """Count who would be sent to set-up if `owner` required two-factor sign-in (1 query).

    The same people `TwoFactorEnrolmentMiddleware` stops: users with the Login flag (interactive)
    who sign in locally (the identity provider holds an SSO user's second factor) and hold
    neither a confirmed authenticator app nor a confirmed passkey.
    """
    User = get_user_model()
    app = TOTPDevice.objects.filter(user_id=OuterRef("pk"), confirmed=True)
    passkey = passkey_policy.credentials().filter(user_id=OuterRef("pk"), confirmed=True)
    figures = (
        User.objects.filter(owner=owner, allow_login=True, kind=UserKind.INTERACTIVE)
        .exclude(auth_source=AuthSource.SAML)
        .filter(~Exists(app), ~Exists(passkey))
        .aggregate(people=Count("pk"), actor=Count("pk", filter=Q(pk=actor.pk)))
    )
    return security_services.EnrolmentImpact(
        people=figures["people"], includes_actor=bool(figures["actor"])
    )


def can_reset_for_others(actor) -> bool:
    """Say whether `actor` holds full data-protection access (reset 2FA, recovery codes)."""
    return actor.is_superuser or permissions.for_user(actor).has(catalog.DP_ACCESS, catalog.FULL)


def check_support_rights(actor, target) -> None:
    """Refuse unless `actor` holds full data-protection access and may manage `target`."""
    if not can_reset_for_others(actor):
        raise PermissionDenied("Needs full Data Protection Access.")
    check_can_manage_user(actor, target)


# Enrolment ---------------------------------------------------------------------------------


def start_enrolment(user) -> TOTPDevice:
    """Return the user's unconfirmed device, creating one with a fresh key when there is none.

    Reloading the enrolment page keeps the same key, so a QR code already scanned stays valid.
    """
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is not None and device.confirmed:
            raise TwoFactorRefused("You already have an authenticator app set up.")
        if device is None:
            device = TOTPDevice.with_new_key(user)
            device.save()
        return device


def confirm_enrolment(user, token: str) -> list[str]:
    """Confirm the user's new device with a first code; return the ten backup codes (shown once)."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is None or device.confirmed:
            raise TwoFactorRefused("Start the set-up again from the two-factor page.")
        if not device.verify_is_allowed()[0]:
            raise TwoFactorRefused(wait_message(device))
        accepted = device.verify_token(token)
        if accepted:
            device.confirmed = True
            device.confirmed_at = timezone.now()
            device.save(update_fields=["confirmed", "confirmed_at"])
            codes = _replace_backup_codes(user)
            audit.record(
                AuditAction.TOTP_ENROLLED,
                actor=user,
                target=user,
                context={"device": device.name, "backup_codes": len(codes)},
            )
            takeover.notify_change(
                user, takeover.Change.AUTHENTICATORS, actor=user, details="Authenticator app added."
            )
            return codes
        audit.record(
            AuditAction.TOTP_FAILED, actor=user, target=user, context={"stage": "enrolment"}
        )
    raise TwoFactorRefused("That code did not match. Type the 6 digits your app shows now.")


def _replace_backup_codes(user) -> list[str]:
    device, _ = BackupCodeDevice.objects.select_for_update().get_or_create(
        user=user, defaults={"name": "Backup codes"}
    )
    device.codes.all().delete()
    device.generated_at = timezone.now()
    device.throttle_reset(commit=False)
    device.save()
    codes = [new_code() for _ in range(BACKUP_CODE_COUNT)]
    rows = []
    for code in codes:
        row = BackupCode(device=device)
        row.set_code(code)
        rows.append(row)
    BackupCode.objects.bulk_create(rows)
    return codes


def regenerate_backup_codes(user, *, actor) -> list[str]:
    """Replace the user's backup codes with ten new ones (the old ones stop working)."""
    if actor.pk != user.pk:
        raise PermissionDenied("Only the person themselves can see new backup codes.")
    with transaction.atomic():
        if not has_confirmed_device(user):
            raise TwoFactorRefused("Set up an authenticator app first.")
        codes = _replace_backup_codes(user)
        audit.record(
            AuditAction.BACKUP_CODES_REGENERATED,
            actor=actor,
            target=user,
            context={"count": len(codes)},
        )
    return codes


# The second step of sign-in ----------------------------------------------------------------


def wait_message(device) -> str:
    """Say how long codes are paused for a throttled device, in the time it really is.

    django-otp doubles the pause with each wrong code in a row (1, 2, 4 … seconds), so after one
    wrong code the wait is a second or two, not "a minute".
    """
    _, info = device.verify_is_allowed()
    until = (info or {}).get("locked_until")
    if until is None:
        return "Too many wrong codes in a row. Wait a moment, then try again."
    seconds = max(1, math.ceil((until - timezone.now()).total_seconds()))
    if seconds < 120:
        wait = f"{seconds} second{'s' if seconds != 1 else ''}"
    else:
        wait = f"{math.ceil(seconds / 60)} minutes"
    return f"Too many wrong codes in a row. Try again in {wait}."


@dataclass(frozen=True)
class SecondFactorResult:
    method: str = ""  # METHOD_TOTP, METHOD_BACKUP_CODE or METHOD_PASSKEY when accepted
    throttled: bool = False
    wait: str = ""  # with throttled: how long codes are paused, in words
    locked: bool = False
    passkey_required: bool = False  # codes refused: the owner requires a passkey of this user
    backup_codes_remaining: int | None = None

    @property
    def accepted(self) -> bool:
        return bool(self.method)


def verify_second_factor(user, code: str, *, stage: str = "sign_in") -> SecondFactorResult:
    """Check a TOTP code (6 digits) or a backup code for `user`; audit the outcome.

    Wrong codes are throttled per device with exponential delay and count towards the account
    lockout like wrong passwords; a locked account accepts no code, nor does the account of a
    privileged person who holds a passkey while their owner requires phishing-resistant sign-in.
    `stage` (sign_in, step_up) is recorded with every refusal.
    """
    code = (code or "").strip()
    is_totp = code.replace(" ", "").isdigit()
    if lockout.is_locked(user):
        audit.record(
            AuditAction.TOTP_FAILED,
            actor=None,
            actor_label=user.username,
            target=user,
            reason="Locked out",
            context={"stage": stage, "locked": True},
        )
        return SecondFactorResult(locked=True)
    if passkey_policy.codes_refused(user):
        audit.record(
            AuditAction.TOTP_FAILED,
            actor=None,
            actor_label=user.username,
            target=user,
            reason="A passkey is required: the owner's policy refuses codes for this user",
            context={"stage": stage, "phishing_resistant_rule": True},
        )
        return SecondFactorResult(passkey_required=True)
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user, confirmed=True).first()
        if device is None:
            return SecondFactorResult()
        backups = BackupCodeDevice.objects.select_for_update().filter(user=user).first()
        checker = device if is_totp or backups is None else backups
        if not checker.verify_is_allowed()[0]:
            audit.record(
                AuditAction.TOTP_FAILED,
                actor=None,
                actor_label=user.username,
                target=user,
                reason="Throttled: too many wrong codes",
                context={"stage": stage, "throttled": True},
            )
            return SecondFactorResult(throttled=True, wait=wait_message(checker))
        if checker.verify_token(code):
            if checker is device:
                return SecondFactorResult(method=METHOD_TOTP)
            remaining = backups.remaining()
            audit.record(
                AuditAction.BACKUP_CODE_USED,
                actor=user,
                target=user,
                context={"remaining": remaining, "stage": stage},
            )
            return SecondFactorResult(method=METHOD_BACKUP_CODE, backup_codes_remaining=remaining)
        kind = "totp" if checker is device else "backup_code"
        audit.record(
            AuditAction.TOTP_FAILED,
            actor=None,
            actor_label=user.username,
            target=user,
            reason="Wrong backup code" if kind == "backup_code" else "Wrong or reused TOTP code",
            context={"stage": stage, "kind": kind},
        )
    return SecondFactorResult(locked=lockout.register_failure(None, user, f"{kind}_wrong"))


def start_second_step(request, user, *, next_url: str = ""):
    """After a good password: hold the sign-in for the second factor, or return None.

    Returns a redirect to the verification page when `user` has a confirmed authenticator app or
    a passkey; the session
    key changes and the session then carries only the pending user id and time, and `next_url`
    (already checked to stay on this site), where the person goes once verified.
    """
    if not has_second_factor(user):
        return None
    request.session.cycle_key()
    request.session[PENDING_KEY] = {
        "user_id": user.pk,
        "at": timezone.now().timestamp(),
        "next": next_url,
    }
    return redirect("twofactor:verify")


def pending_user(request):
    """Return the user waiting for the second step in this session, or None when expired."""
    pending = request.session.get(PENDING_KEY)
    if not isinstance(pending, dict):
        return None
    age = timezone.now().timestamp() - float(pending.get("at", 0))
    if not 0 <= age <= PENDING_SECONDS:
        request.session.pop(PENDING_KEY, None)
        return None
    user = get_user_model().objects.select_related("owner").filter(pk=pending["user_id"]).first()
    if user is None or not user.is_active:
        request.session.pop(PENDING_KEY, None)
        return None
    return user


def complete_sign_in(request, user, result: SecondFactorResult) -> str:
    """Start the session after an accepted second factor; return where to go next.

    As after a password-only sign-in: the sign-in is a proof for step-up, and an expired
    password sends the person to the change-password page first.
    """
    from accounts import services

    pending = request.session.pop(PENDING_KEY, {}) or {}
    services.record_sign_in(
        request,
        user,
        method=result.method,
        second_factor=SECOND_FACTORS.get(result.method, "backup_code"),
    )
    request.session[VERIFIED_SESSION_KEY] = True
    stepup.mark_proof(request)
    target = pending.get("next") or resolve_url(settings.LOGIN_REDIRECT_URL)
    if password_expired(user):
        audit.record(AuditAction.PASSWORD_EXPIRED, actor=user, target=user)
        return reverse("security:password_change") + "?" + urlencode({"next": target})
    return target


# Removal and reset -------------------------------------------------------------------------


def remove_own_device(user, *, password: str = "", token: str = "") -> None:
    """Remove the person's own device and backup codes after their password or a current code."""
    with transaction.atomic():
        device = TOTPDevice.objects.select_for_update().filter(user=user).first()
        if device is None:
            raise TwoFactorRefused("There is no authenticator app to remove.")
        by_password = (
            bool(password) and user.has_usable_password() and user.check_password(password)
        )
        proved = by_password
        if not proved and token:
            if not device.verify_is_allowed()[0]:
                raise TwoFactorRefused(wait_message(device))
            proved = device.confirmed and device.verify_token(token)
        if not proved:
            audit.record(
                AuditAction.TOTP_FAILED,
                actor=user,
                target=user,
                context={"stage": "removal"},
            )
        else:
            delete_app(user)
            audit.record(
                AuditAction.TOTP_REMOVED,
                actor=user,
                target=user,
                method="password" if by_password else "totp",
            )
            takeover.notify_change(
                user,
                takeover.Change.AUTHENTICATORS,
                actor=user,
                details="Authenticator app and backup codes removed.",
            )
            return
    lockout.register_failure(None, user, "device_removal_proof_wrong")
    raise TwoFactorRefused("That password or code did not match.")


def delete_app(user) -> None:
    """Delete the user's TOTP device and backup codes (callers audit and hold the transaction)."""
    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()


def delete_devices(user) -> int:
    """Delete the user's TOTP device, backup codes and passkeys; return the passkeys deleted.

    Callers audit and hold the transaction.
    """
    delete_app(user)
    passkeys = passkey_policy.credentials().filter(user_id=user.pk)
    _, deleted = passkeys.delete()
    return deleted.get(passkeys.model._meta.label, 0)


def reset_device(target, *, actor, reason: str, notify: bool = True) -> int:
    """Remove another person's device, backup codes and passkeys and end all their sessions.

    Needs full Data Protection Access and the right to manage `target` (no escalation). Returns
    the number of sessions ended. The person is emailed (with `notify`; the recovery console
    sends its own email instead).
    """
    reason = required_reason(reason, "Say why the two-factor device is being reset.")
    check_support_rights(actor, target)
    with transaction.atomic():
        had_device = TOTPDevice.objects.filter(user=target).exists()
        passkeys = delete_devices(target)
        ended = delete_sessions(target, reason="Two-factor reset")
        audit.record(
            AuditAction.TOTP_RESET,
            actor=actor,
            target=target,
            reason=reason,
            context={
                "had_device": had_device,
                "webauthn_removed": passkeys,
                "sessions_ended": ended,
            },
        )
        if notify:
            takeover.notify_change(
                target,
                takeover.Change.AUTHENTICATORS,
                actor=actor,
                details="Two-factor sign-in reset: authenticator app, backup codes and passkeys "
                "removed, every session ended.",
            )
    return ended


# Sessions ----------------------------------------------------------------------------------


def delete_sessions(user, *, reason: str) -> int:
    """End every session signed in as `user`, seen or not yet seen; return how many were live.

    Callers audit and hold the transaction. A pending second step is not a session of the user
    and dies after PENDING_SECONDS anyway.
    """
    return security_services.end_tracked_sessions(user, reason=reason)


def end_sessions(target, *, actor, reason: str) -> int:
    """End every session of `target` (support action, audited SESSIONS_ENDED); return how many."""
    check_support_rights(actor, target)
    return security_services.end_all_sessions(target, actor=actor, reason=reason)
