"""Account recovery: codes that support staff email to a user, and the public recovery page.

- `send_recovery_code` (staff, full Data Protection Access): a single-use code bound to one user
  and one purpose, expiring after RECOVERY_CODE_MINUTES, kept as a salted hash, emailed to the
  user and never shown to staff.
- `check_recovery_code` (public page): email + code. Wrong codes are throttled per user and per
  client address with exponential delay; an unknown email behaves exactly like a wrong code.
- `use_recovery_code`: set a new password (the owner's policy) or remove the 2FA device, once:
  the code row is locked and stamped in the same transaction. Recovery never signs anyone in.
- `account_state`: where an account stands, shown first on the support console.
- `run_console_actions`: the support console's chosen actions in one transaction (each through
  its own service, each audited), then one email to the user saying what was done and by whom.

Every email goes to the outbox (`delivery.email.queue`) in the transaction of its action; the
worker sends it, so a mail server that is away never fails or undoes a support action.
"""

from __future__ import annotations

import datetime
import secrets
import zoneinfo
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.urls import reverse
from django.utils import timezone

import audit
from audit.choices import AuditAction
from delivery import email as outbox
from delivery.choices import EmailKind
from portal.reasons import required_reason
from security import lockout
from security import services as security_services
from security.models import UserSession
from security.validators import policy_for

from . import services as account_services
from .models import PasswordSetToken
from .twofactor import services as twofactor
from .twofactor.models import (
    RecoveryCode,
    RecoveryPurpose,
    RecoveryThrottle,
    hash_code,
    new_code,
)

GENERIC_REFUSAL = "That email address and code do not match a valid recovery code."
THROTTLED = "Too many attempts. Wait a few minutes, then try again."
FREE_ATTEMPTS = 3  # wrong codes before the delay starts: 1, 2, 4 … minutes after that

ACTION_PASSWORD = "password"
ACTION_REMOVE_2FA = "remove_2fa"


class RecoveryRefused(ValidationError):
    """The recovery code or request was refused; the message is generic and safe to show."""


def code_minutes() -> int:
    return max(1, int(getattr(settings, "RECOVERY_CODE_MINUTES", 30)))


def _their_time(user, moment=None) -> str:
    """Return `moment` (default now) as the user reads it, in their own time zone."""
    try:
        zone = zoneinfo.ZoneInfo(user.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = datetime.UTC
    return f"{timezone.localtime(moment or timezone.now(), zone):%d %b %Y at %H:%M %Z}"


def _staff(actor, user) -> str:
    """Name the staff member who acted, and where from: "Sam Support at Acme Telecom"."""
    return f"{actor.label} at {user.owner.name}"


def _notify(user, subject: str, lines: list[str], *, kind=EmailKind.ACCOUNT_NOTICE, **queued):
    """Put an email to `user` in the outbox, in the caller's transaction (the worker sends it)."""
    body = "\n\n".join([f"Hello {user.get_short_name()},", *lines, "Billing Access"])
    outbox.queue(
        to=user.email,
        subject=f"Billing Access: {subject}",
        body=body,
        kind=kind,
        owner=user.owner,
        user=user,
        **queued,
    )


# Staff: send a code ------------------------------------------------------------------------


def send_recovery_code(user, *, actor, reason: str) -> RecoveryCode:
    """Email `user` a fresh recovery code (earlier live codes stop working); staff never see it.

    Needs full Data Protection Access and the right to manage `user`. The email goes to the
    outbox in the same transaction (encrypted until sent); the worker sends it, and gives up
    once the code has expired.
    """
    reason = required_reason(reason, "Say why a recovery code is being sent.")
    twofactor.check_support_rights(actor, user)
    if not user.is_active:
        raise ValidationError("This user cannot sign in (no Login flag), so cannot recover.")
    now = timezone.now()
    code = new_code()
    with transaction.atomic():
        RecoveryCode.objects.filter(
            user=user,
            purpose=RecoveryPurpose.ACCOUNT_RECOVERY,
            used_at__isnull=True,
            expires_at__gt=now,
        ).update(used_at=now, used_for="superseded")
        row = RecoveryCode(
            user=user,
            purpose=RecoveryPurpose.ACCOUNT_RECOVERY,
            expires_at=now + datetime.timedelta(minutes=code_minutes()),
            sent_by=actor,
            reason=reason[:300],
        )
        row.set_code(code)
        row.save()
        audit.record(
            AuditAction.RECOVERY_CODE_SENT,
            actor=actor,
            target=user,
            reason=reason,
            context={"expires_at": row.expires_at, "recovery_code_id": row.pk},
        )
        url = settings.PUBLIC_URL + reverse("twofactor:recover")
        _notify(
            user,
            "your recovery code",
            [
                f"{_staff(actor, user)} sent you this recovery code:\n\n    {code}\n\n"
                f"Open {url}, enter your email address and the code, then choose to set a new "
                "password or to remove your two-factor device.",
                f"The code works once, until {_their_time(user, row.expires_at)} "
                f"({code_minutes()} minutes). Never tell it to anyone, including support staff.",
                "If you did not ask for this, contact your administrator at once.",
            ],
            kind=EmailKind.RECOVERY_CODE,
            send_before=row.expires_at,
        )
    return row


# Public page: check a code -----------------------------------------------------------------


def _throttle_rows(keys: list[tuple[str, str]]) -> list[RecoveryThrottle]:
    rows = []
    for scope, key in keys:
        RecoveryThrottle.objects.bulk_create(
            [RecoveryThrottle(scope=scope, key=key)], ignore_conflicts=True
        )
        rows.append(RecoveryThrottle.objects.select_for_update().get(scope=scope, key=key))
    return rows


def _is_throttled(row: RecoveryThrottle, now) -> bool:
    if row.failure_count < FREE_ATTEMPTS or row.last_failure_at is None:
        return False
    delay = datetime.timedelta(minutes=2 ** min(row.failure_count - FREE_ATTEMPTS, 16))
    return now < row.last_failure_at + delay


@dataclass(frozen=True)
class CheckedCode:
    code_id: int
    user_id: int


def check_recovery_code(email: str, code: str, *, ip: str) -> CheckedCode:
    """Return the live code matching `email` and `code` (not yet used), else refuse.

    Refusals are counted per user and per client address and audited as RECOVERY_CODE_FAILED
    with the exact reason; the person always reads the same generic message.
    """
    now = timezone.now()
    email = (email or "").strip()
    users = get_user_model().objects.select_related("owner")
    user = users.filter(email__ci=email).first() if email else None
    keys = [(RecoveryThrottle.Scope.IP, ip or "unknown")]
    if user is not None:
        keys.append((RecoveryThrottle.Scope.USER, str(user.pk)))
    with transaction.atomic():
        throttles = _throttle_rows(keys)
        if any(_is_throttled(row, now) for row in throttles):
            _record_failure(email, user, "throttled", now=now, throttles=None)
            throttled = True
        else:
            throttled = False
            found = _matching_code(user, code, now)
            if found is not None:
                RecoveryThrottle.objects.filter(pk__in=[t.pk for t in throttles]).update(
                    failure_count=0, last_failure_at=None
                )
                return CheckedCode(code_id=found.pk, user_id=user.pk)
            reason = "unknown_email" if user is None else _why_refused(user, code, now)
            _record_failure(email, user, reason, now=now, throttles=throttles)
    raise RecoveryRefused(THROTTLED if throttled else GENERIC_REFUSAL)


def _matching_code(user, code: str, now) -> RecoveryCode | None:
    if user is None:
        hash_code(code, secrets.token_hex(16))  # spend the same time as a real comparison
        return None
    live = RecoveryCode.objects.filter(
        user=user,
        purpose=RecoveryPurpose.ACCOUNT_RECOVERY,
        used_at__isnull=True,
        expires_at__gt=now,
    )
    for row in live:
        if row.matches(code):
            return row
    return None


def _why_refused(user, code: str, now) -> str:
    for row in RecoveryCode.objects.filter(user=user).order_by("-created_at")[:5]:
        if row.matches(code):
            return "used" if row.used_at else "expired"
    return "wrong_code"


def _record_failure(email, user, reason, *, now, throttles) -> None:
    for row in throttles or []:
        row.failure_count += 1
        row.last_failure_at = now
        row.save(update_fields=["failure_count", "last_failure_at"])
    audit.record(
        AuditAction.RECOVERY_CODE_FAILED,
        actor=None,
        actor_label=(email or "")[:150],
        target=user,
        owner=getattr(user, "owner", None),
        subject_user=user,
        reason=reason,
        context={"reason": reason},
    )


# Public page: use a code -------------------------------------------------------------------


def live_code(code_id) -> RecoveryCode | None:
    """Return the unused, unexpired recovery code with this id (and its user), or None."""
    row = RecoveryCode.objects.select_related("user", "user__owner").filter(pk=code_id).first()
    return row if row is not None and row.is_live() else None


def available_actions(user) -> list[str]:
    """Return what a recovery code can do for `user`: a local password, removing the device."""
    actions = []
    if not user.is_sso_managed:
        actions.append(ACTION_PASSWORD)
    if twofactor.has_any_device(user):
        actions.append(ACTION_REMOVE_2FA)
    return actions


def use_recovery_code(code_id: int, *, action: str, new_password: str = ""):
    """Spend the code on one action, once: set a new password or remove the 2FA device.

    The code row is locked and stamped `used_at` in the same transaction as the action, so a
    double submit does the thing once. Never signs the person in: a new password leaves the
    second factor in place, and removing the device ends every session of the user.
    """
    now = timezone.now()
    with transaction.atomic():
        row = (
            RecoveryCode.objects.select_for_update()
            .select_related("user", "user__owner")
            .filter(pk=code_id, purpose=RecoveryPurpose.ACCOUNT_RECOVERY)
            .first()
        )
        if row is None or not row.is_live(now):
            raise RecoveryRefused("This recovery code has been used or has expired.")
        user = row.user
        if action not in available_actions(user):
            raise RecoveryRefused("That choice is not available for this account.")
        if action == ACTION_PASSWORD:
            # The owner's policy and history; PASSWORD_SET audited. Every session of the user
            # ends with it (the session hash follows the password hash).
            security_services.set_password(user, new_password, actor=None, via="recovery_code")
            notice = "Your password was changed with a recovery code."
        else:
            twofactor.delete_devices(user)
            ended = twofactor.delete_sessions(user, reason="Two-factor removed by recovery")
            audit.record(
                AuditAction.TOTP_REMOVED,
                actor=None,
                actor_label=user.username,
                target=user,
                method="recovery_code",
                context={"sessions_ended": ended},
            )
            notice = (
                "Your two-factor device was removed with a recovery code and every session of "
                "your account was ended."
            )
        row.used_at = now
        row.used_for = action
        row.save(update_fields=["used_at", "used_for"])
        audit.record(
            AuditAction.RECOVERY_CODE_USED,
            actor=None,
            actor_label=user.username,
            target=user,
            context={"action": action, "recovery_code_id": row.pk},
        )
        _notify(
            user,
            "your account was recovered",
            [notice, "If this was not you, contact your administrator at once."],
        )
    return user


# The recovery console ----------------------------------------------------------------------

CONSOLE_ACCESS_EMAIL = "access_email"
CONSOLE_RECOVERY_CODE = "recovery_code"
CONSOLE_RESET_2FA = "reset_2fa"
CONSOLE_CLEAR_LOCKOUT = "clear_lockout"
CONSOLE_END_SESSIONS = "end_sessions"

# In the order they run: unlock first, then the factors and sessions, then what is emailed.
CONSOLE_LABELS = {
    CONSOLE_CLEAR_LOCKOUT: "Clear the sign-in lockout",
    CONSOLE_RESET_2FA: "Reset two-factor authentication (app, backup codes and passkeys)",
    CONSOLE_END_SESSIONS: "End all sessions",
    CONSOLE_ACCESS_EMAIL: "Send a password reset (access email with a password-set link)",
    CONSOLE_RECOVERY_CODE: "Send a recovery code email",
}
CONSOLE_DONE = {
    CONSOLE_ACCESS_EMAIL: "sent you an email with a link to set a new password",
    CONSOLE_RECOVERY_CODE: "sent you a recovery code",
    CONSOLE_RESET_2FA: "reset your two-factor authentication and ended your sessions",
    CONSOLE_CLEAR_LOCKOUT: "cleared the sign-in lockout of your account",
    CONSOLE_END_SESSIONS: "ended every session of your account",
}
CONSOLE_DONE_FOR_STAFF = {
    CONSOLE_ACCESS_EMAIL: "Access email sent",
    CONSOLE_RECOVERY_CODE: "Recovery code emailed to the user",
    CONSOLE_RESET_2FA: "Two-factor authentication reset and sessions ended",
    CONSOLE_CLEAR_LOCKOUT: "Lockout cleared",
    CONSOLE_END_SESSIONS: "All sessions ended",
}
# What each action does, for the confirmation before it runs.
CONSOLE_CONSEQUENCES = {
    CONSOLE_CLEAR_LOCKOUT: "The failed sign-ins are forgotten; the person can sign in at once.",
    CONSOLE_RESET_2FA: (
        "The authenticator app, the backup codes and every passkey are removed and every "
        "session ends; the person sets up two-factor sign-in again."
    ),
    CONSOLE_END_SESSIONS: "Every browser signed in as this person is signed out.",
    CONSOLE_ACCESS_EMAIL: (
        "The person is emailed a single-use link to set a new password; earlier links stop working."
    ),
    CONSOLE_RECOVERY_CODE: (
        "The person is emailed a single-use recovery code; earlier codes stop working."
    ),
}

# The identity checks support staff confirm before any console action (form field names).
IDENTITY_CHECKS = ("checked_identity", "checked_email", "checked_request")
IDENTITY_REFUSED = "Confirm every identity check before acting on someone's account."


@dataclass(frozen=True)
class AccountState:
    """What support staff see first on the recovery console: where the account stands."""

    can_sign_in: bool
    sso: bool
    locked: bool
    locked_until: datetime.datetime | None  # None while locked: until an administrator clears it
    twofactor: twofactor.Status
    last_sign_in_at: datetime.datetime | None
    live_sessions: int
    recovery_codes: int  # live codes sent and not used
    recovery_code_expires_at: datetime.datetime | None
    access_links: int  # usable password-set links
    access_link_expires_at: datetime.datetime | None
    has_password: bool
    must_change_password: bool
    password_expires_at: datetime.datetime | None  # None: the policy sets no expiry
    password_expired: bool


def account_state(user, *, now=None) -> AccountState:
    """Return where `user`'s account stands: lockout, factors, sign-in, pending codes, password."""
    now = now or timezone.now()
    codes = RecoveryCode.objects.filter(
        user=user,
        purpose=RecoveryPurpose.ACCOUNT_RECOVERY,
        used_at__isnull=True,
        expires_at__gt=now,
    ).aggregate(count=Count("pk"), until=Max("expires_at"))
    links = PasswordSetToken.objects.filter(user=user).usable(now)
    links = links.aggregate(count=Count("pk"), until=Max("expires_at"))
    locked = lockout.is_locked(user, now=now)
    expiry_days = policy_for(user).expiry_days
    has_password = user.has_usable_password() and not user.is_sso_managed
    expires_at = None
    if has_password and expiry_days:
        changed = user.password_changed_at or user.created_at
        expires_at = changed + datetime.timedelta(days=expiry_days)
    return AccountState(
        can_sign_in=user.is_active,
        sso=user.is_sso_managed,
        locked=locked,
        locked_until=lockout.locked_until(user, now=now) if locked else None,
        twofactor=twofactor.status(user),
        last_sign_in_at=user.last_sign_in_at,
        live_sessions=UserSession.objects.filter(user=user, ended_at__isnull=True).count(),
        recovery_codes=codes["count"],
        recovery_code_expires_at=codes["until"],
        access_links=links["count"],
        access_link_expires_at=links["until"],
        has_password=has_password,
        must_change_password=has_password and user.must_change_password,
        password_expires_at=expires_at,
        password_expired=security_services.password_expired(user, now=now),
    )


def _why_unavailable(user) -> dict[str, str]:
    """Return, for each console action that cannot be done for `user` now, why not."""
    why = {}
    try:
        account_services.check_can_receive_access_email(user)
    except ValidationError as exc:
        why[CONSOLE_ACCESS_EMAIL] = " ".join(exc.messages)
    if not user.is_active:
        why[CONSOLE_RECOVERY_CODE] = "This user cannot sign in (no Login flag), so cannot recover."
    if not twofactor.has_any_device(user):
        why[CONSOLE_RESET_2FA] = "No authenticator app or passkey to reset."
    if not lockout.is_locked(user):
        why[CONSOLE_CLEAR_LOCKOUT] = "The account is not locked out."
    return why


def console_actions(user) -> list[tuple[str, str, str]]:
    """Return the console's actions for `user` as (code, label, why not): "" when available."""
    why = _why_unavailable(user)
    return [(code, label, why.get(code, "")) for code, label in CONSOLE_LABELS.items()]


def console_plan(actions) -> list[str]:
    """Return the chosen actions in the order they run, without one another action includes.

    Resetting two-factor ends every session, so "end all sessions" beside it does nothing more.
    """
    chosen = [code for code in CONSOLE_LABELS if code in set(actions)]
    if CONSOLE_RESET_2FA in chosen and CONSOLE_END_SESSIONS in chosen:
        chosen.remove(CONSOLE_END_SESSIONS)
    return chosen


def run_console_actions(user, *, actor, actions, reason: str, identity_checks) -> list[str]:
    """Do the chosen support actions on `user` at once, then email them what was done and by whom.

    Needs every identity check, a reason and full Data Protection Access over `user`. Each action
    goes through its own service (with its own audit event and this reason); all of them and the
    email run in one transaction, so when one is refused nothing is done. Returns what was done,
    for the staff member.
    """
    reason = (reason or "").strip()
    if set(IDENTITY_CHECKS) - set(identity_checks or ()):
        raise ValidationError(IDENTITY_REFUSED)
    if not reason:
        raise ValidationError({"reason": "Say why you are doing this."})
    twofactor.check_support_rights(actor, user)
    plan = console_plan(actions or ())
    if not plan:
        raise ValidationError({"action": "Choose at least one action."})
    why = _why_unavailable(user)
    refused = [f"{CONSOLE_LABELS[code]}: {why[code]}" for code in plan if code in why]
    if refused:
        raise ValidationError({"action": refused})
    with transaction.atomic():  # every action and the notice: all or nothing
        for action in plan:
            _run_one(user, actor=actor, action=action, reason=reason)
        told = [CONSOLE_DONE[code] for code in plan if code != CONSOLE_RECOVERY_CODE]
        if told:  # the recovery code's own email already says who sent it
            _notify(
                user,
                "support acted on your account",
                [
                    f"On {_their_time(user)}, {_staff(actor, user)} {_and_list(told)}.",
                    "If you did not ask for this, contact your administrator at once: someone "
                    "may be trying to take over your account.",
                ],
            )
    return [CONSOLE_DONE_FOR_STAFF[code] for code in plan]


def _and_list(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _run_one(user, *, actor, action: str, reason: str) -> None:
    """Do one console action through the service that owns it (which audits it)."""
    if action == CONSOLE_ACCESS_EMAIL:
        account_services.send_access_email(user, actor=actor, reason=reason)
    elif action == CONSOLE_RECOVERY_CODE:
        send_recovery_code(user, actor=actor, reason=reason)
    elif action == CONSOLE_RESET_2FA:
        # The console's own email tells the user; the reset's notice would repeat it.
        twofactor.reset_device(user, actor=actor, reason=reason, notify=False)
    elif action == CONSOLE_CLEAR_LOCKOUT:
        security_services.clear_lockout(user, actor=actor, reason=reason)
    elif action == CONSOLE_END_SESSIONS:
        twofactor.end_sessions(user, actor=actor, reason=reason)
    else:  # pragma: no cover - console_plan keeps only known actions
        raise PermissionDenied
