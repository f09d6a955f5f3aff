"""Security actions: policy changes, passwords, lockouts, sessions and sign-in restrictions.

Each function checks its rules, changes the rows and writes its audit event in one transaction.
"""

from __future__ import annotations

import datetime
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.db import transaction
from django.db.models import F
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.display import summarise_user_agent
from audit.services import diff
from portal.reasons import required_reason

from . import lockout, signals
from .models import PasswordHistory, PasswordPolicy, SignInRestriction, UserSession

POLICY_FIELDS = (
    "min_length",
    "require_upper",
    "require_lower",
    "require_digit",
    "require_symbol",
    "allowed_characters",
    "history_depth",
    "expiry_days",
    "lockout_threshold",
    "lockout_minutes",
    "idle_timeout_minutes",
    "absolute_timeout_hours",
    "require_2fa",
    "max_token_days",
    "allow_passwordless",
    "require_phishing_resistant",
    "notify_new_sign_in",
)
# Previous hashes kept per user: the deepest history a policy may ask for.
HISTORY_KEPT = 24
CONCURRENT_CHANGE = (
    "Someone else changed this in the meantime. Reload the page to see their change, then make "
    "yours again."
)


class PasswordVia:
    """How a password was set, recorded in the audit event."""

    SELF = "self_service"
    EXPIRY = "expiry"
    SET_PASSWORD_LINK = "set_password_link"
    RECOVERY = "recovery"
    ADMIN = "admin"


# -- Policy --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EnrolmentImpact:
    """Who a "require two-factor" switch would send to set-up at their next page."""

    people: int  # active local users of the owner without an app or a passkey
    includes_actor: bool  # the person turning it on is one of them


# The count behind the warning. The accounts app owns the devices and registers its count when
# it is ready (as it does the step-up code check), so this app never imports it.
_enrolment_impact: Callable[[Any, Any], EnrolmentImpact] | None = None


def register_enrolment_impact(count: Callable[[Any, Any], EnrolmentImpact]) -> None:
    """Name the function that counts who "require two-factor" sends to set-up:
    count(owner, actor) -> EnrolmentImpact."""
    global _enrolment_impact
    _enrolment_impact = count


def enrolment_impact(owner, actor) -> EnrolmentImpact:
    """Count who would be sent to set-up if `owner` required two-factor sign-in, and whether
    `actor` is one of them."""
    if _enrolment_impact is None:
        raise ImproperlyConfigured("No two-factor enrolment count is registered (accounts app).")
    return _enrolment_impact(owner, actor)


def policy_of(owner) -> PasswordPolicy:
    """Return the owner's saved policy, or an unsaved one holding the defaults."""
    return PasswordPolicy.objects.filter(owner=owner).first() or PasswordPolicy(owner=owner)


def _policy_values(policy: PasswordPolicy) -> dict[str, Any]:
    return {name: getattr(policy, name) for name in POLICY_FIELDS}


def update_policy(
    policy: PasswordPolicy, *, actor, reason: str, data: dict[str, Any], expected_row_version: int
) -> PasswordPolicy:
    """Change the owner's policy; refuse a stale edit or a minimum length below the floor.

    `data` maps policy fields to new values; the change applies to that owner's users only and
    is audited with before and after, and the reason.
    """
    reason = required_reason(reason, "Say why the policy changes.")
    if policy.owner_id != actor.owner_id and not actor.is_superuser:
        raise ValidationError("This policy belongs to another organisation.")
    unknown = set(data) - set(POLICY_FIELDS)
    if unknown:
        raise ValueError(f"Not policy fields: {sorted(unknown)}")
    with transaction.atomic():
        current = (
            PasswordPolicy.objects.select_for_update().filter(owner_id=policy.owner_id).first()
        )
        if current is None:
            current = PasswordPolicy(owner_id=policy.owner_id)
        if current.row_version != expected_row_version:
            raise ValidationError(CONCURRENT_CHANGE)
        before = _policy_values(current)
        for name, value in data.items():
            setattr(current, name, value)
        current.full_clean(exclude=["owner"])
        changes = diff(before, _policy_values(current))
        if not changes:
            return current
        current.row_version = (current.row_version or 1) + 1
        current.updated_at = timezone.now()
        current.save()
        audit.record(
            AuditAction.POLICY_CHANGED,
            actor=actor,
            target=("passwordpolicy", current.pk, str(current.owner)),
            owner=current.owner_id,
            changes=changes,
            reason=reason,
        )
    return current


# -- Passwords -----------------------------------------------------------------------------------


def set_password(user, raw: str, *, actor, via: str) -> None:
    """Set the user's password after checking it against the owner's policy.

    Keep the previous hash in the history, record when it changed, clear a forced change, and
    audit PASSWORD_CHANGED (the user's own) or PASSWORD_SET (by someone else, or by a link).
    Raise ValidationError with one message per failed rule.
    """
    validate_password(raw, user)
    now = timezone.now()
    with transaction.atomic():
        previous = (
            get_user_model()
            .objects.select_for_update()
            .filter(pk=user.pk)
            .values_list("password", flat=True)
        )
        previous_hash = previous.first()
        if previous_hash and not previous_hash.startswith("!"):
            PasswordHistory.objects.create(user_id=user.pk, password=previous_hash, created_at=now)
            stale = PasswordHistory.objects.filter(user_id=user.pk).values_list("pk", flat=True)[
                HISTORY_KEPT:
            ]
            PasswordHistory.objects.filter(pk__in=list(stale)).delete()
        user.set_password(raw)
        user.password_changed_at = now
        user.must_change_password = False
        get_user_model().objects.filter(pk=user.pk).update(
            password=user.password, password_changed_at=now, must_change_password=False
        )
        own = actor is not None and getattr(actor, "pk", None) == user.pk
        audit.record(
            AuditAction.PASSWORD_CHANGED if own else AuditAction.PASSWORD_SET,
            actor=actor,
            actor_label="" if actor is not None else user.username,
            target=user,
            context={"via": via},
        )
        had_one = bool(previous_hash) and not previous_hash.startswith("!")
        # A first password is no change to tell of; recovery emails the person on its own.
        if had_one and via not in (PasswordVia.RECOVERY, "recovery_code"):
            signals.password_changed.send(sender=set_password, user=user, actor=actor)


def password_expired(user, *, now=None) -> bool:
    """Say whether the user must choose a new password before going on (forced or expired)."""
    if not user.has_usable_password() or user.is_sso_managed:
        return False
    if user.must_change_password:
        return True
    from .validators import policy_for

    days = policy_for(user).expiry_days
    if not days:
        return False
    changed = user.password_changed_at or user.created_at
    return changed + timezone.timedelta(days=days) <= (now or timezone.now())


# -- Lockout -------------------------------------------------------------------------------------


def clear_lockout(user, *, actor, reason: str = "") -> None:
    """Unlock the user's account (its failed sign-ins forgotten) and audit LOCKOUT_CLEARED."""
    if user.owner_id != actor.owner_id and not actor.is_superuser:
        raise ValidationError("This user belongs to another organisation.")
    with transaction.atomic():
        was_locked = lockout.is_locked(user)
        lockout.reset(user)
        audit.record(
            AuditAction.LOCKOUT_CLEARED,
            actor=actor,
            target=user,
            reason=reason or "Cleared by an administrator",
            context={"was_locked": was_locked},
        )


# -- Sessions ------------------------------------------------------------------------------------


def hash_session_key(key: str) -> str:
    """Return the stored form of a session key (its SHA-256)."""
    return hashlib.sha256((key or "").encode()).hexdigest()


def end_session(session: UserSession, *, actor, reason: str) -> bool:
    """End one of a user's sessions (refused at its next request) and audit SESSIONS_ENDED.

    The actor is the session's own user or someone of the same owner (the screens check that
    they may administer users). Return False when the session had already ended.
    """
    user = session.user
    if actor.pk != user.pk and user.owner_id != actor.owner_id and not actor.is_superuser:
        raise ValidationError("This session belongs to another organisation.")
    with transaction.atomic():
        now = timezone.now()
        updated = UserSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
            ended_at=now, end_reason=reason[:100]
        )
        if updated:
            _move_session_epoch(session.user_id)
            session.ended_at, session.end_reason = now, reason[:100]
            audit.record(
                AuditAction.SESSIONS_ENDED,
                actor=actor,
                target=user,
                reason=reason,
                context={
                    "count": 1,
                    "session_id": session.pk,
                    "device": summarise_user_agent(session.user_agent),
                    "session_ip": session.ip or "",
                },
            )
    return bool(updated)


def end_other_sessions(user, *, current_key: str, actor) -> int:
    """End every live session of the user except the current one; return how many ended."""
    return _end_sessions(
        user,
        actor=actor,
        reason="Signed out of other sessions",
        keep_hash=hash_session_key(current_key),
    )


def end_all_sessions(user, *, actor, reason: str) -> int:
    """End every live session of the user (an administrator's action); return how many ended."""
    if user.owner_id != actor.owner_id and not actor.is_superuser:
        raise ValidationError("This user belongs to another organisation.")
    return _end_sessions(user, actor=actor, reason=reason or "Ended by an administrator")


def end_tracked_sessions(user, *, reason: str, keep_hash: str = "") -> int:
    """Mark the user's live sessions ended and move their session epoch; return how many.

    Callers audit and hold the transaction. Each live session reads its row again at its next
    request and is refused; a session signed in but not seen yet has no row, and is refused by
    the epoch stamped into it at sign-in (`security.middleware`).
    """
    live = UserSession.objects.filter(user_id=user.pk, ended_at__isnull=True)
    if keep_hash:
        live = live.exclude(key_hash=keep_hash)
    count = live.update(ended_at=timezone.now(), end_reason=reason[:100])
    _move_session_epoch(user.pk)
    return count


def _move_session_epoch(user_id) -> None:
    get_user_model().objects.filter(pk=user_id).update(session_epoch=F("session_epoch") + 1)


def _end_sessions(user, *, actor, reason: str, keep_hash: str = "") -> int:
    with transaction.atomic():
        count = end_tracked_sessions(user, reason=reason, keep_hash=keep_hash)
        audit.record(
            AuditAction.SESSIONS_ENDED,
            actor=actor,
            target=user,
            reason=reason,
            context={"count": count},
        )
    return count


@dataclass(frozen=True)
class SessionPurge:
    expired_sessions: int  # Django's session rows past their expiry
    records: int  # UserSession rows not seen since the cutoff
    cutoff: datetime.datetime


def purge_sessions(*, days: int) -> SessionPurge:
    """Delete expired sessions and the records of sessions not seen for `days` days.

    A session ends at most SESSION_COOKIE_AGE after its last request (each request of a live
    session renews it), so a record older than that belongs to a session that is over: the
    cutoff is never more recent than that age, whatever `days` says. The records are tracking
    only (when and where a session was used); who signed in stays in the audit log.
    """
    if days < 1:
        raise ValueError("days must be at least 1")
    now = timezone.now()
    kept = max(
        datetime.timedelta(days=days), datetime.timedelta(seconds=settings.SESSION_COOKIE_AGE)
    )
    cutoff = now - kept
    expired, _ = Session.objects.filter(expire_date__lt=now).delete()
    records, _ = UserSession.objects.filter(last_seen_at__lt=cutoff).delete()
    return SessionPurge(expired_sessions=expired, records=records, cutoff=cutoff)


# -- Sign-in restrictions ------------------------------------------------------------------------

RESTRICTION_FIELDS = ("allowed_networks", "allowed_from", "allowed_until")


def restriction_of(user) -> SignInRestriction:
    """Return the user's saved restriction, or an unsaved empty one."""
    return SignInRestriction.objects.filter(user_id=user.pk).first() or SignInRestriction(user=user)


def set_sign_in_restriction(
    user, *, actor, reason: str, data: dict[str, Any], expected_row_version: int
) -> SignInRestriction:
    """Set where and when the user may sign in, refusing a stale edit; audit before and after."""
    from roles.guards import check_can_manage_user

    reason = required_reason(reason, "Say why the restriction changes.")
    check_can_manage_user(actor, user)
    with transaction.atomic():
        current = SignInRestriction.objects.select_for_update().filter(user_id=user.pk).first()
        if current is None:
            current = SignInRestriction(user=user)
        if current.row_version != expected_row_version:
            raise ValidationError(CONCURRENT_CHANGE)
        before = {name: getattr(current, name) for name in RESTRICTION_FIELDS}
        for name, value in data.items():
            if name not in RESTRICTION_FIELDS:
                raise ValueError(f"Not a restriction field: {name}")
            setattr(current, name, value)
        current.full_clean(exclude=["user"])
        changes = diff(before, {name: getattr(current, name) for name in RESTRICTION_FIELDS})
        if not changes:
            return current
        if current.pk:
            current.row_version = F("row_version") + 1
        current.updated_at = timezone.now()
        current.save()
        current.refresh_from_db()
        audit.record(
            AuditAction.USER_CHANGED,
            actor=actor,
            target=user,
            changes=changes,
            details="Sign-in restriction",
            reason=reason,
        )
    return current
