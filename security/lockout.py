"""Lockout after repeated failed sign-ins, with the limits of each user's owner policy.

django-axes runs the machinery (its backend refuses a locked account before any password is
checked, its signals report failures, its middleware and database tables are used); this module
gives it the owner's policy and keeps the authoritative count of a known account in one row per
account (`AccountLockout`), changed under a row lock:

- an attempt first *reserves* its place (`begin_attempt`): the count goes up before the password
  is checked, and an account whose count already reached the limit is refused without a check.
  However many guesses arrive in parallel, at most `lockout_threshold` passwords are ever tried;
- a correct password gives the reservation back (`release_attempt`), a completed sign-in (every
  factor) clears the count (`reset`);
- a wrong password keeps it; the attempt that reaches the limit locks the account and writes the
  LOCKED_OUT audit event.

A lockout lasts `lockout_minutes` from the moment it started (0: until an administrator clears
it with `security.services.clear_lockout`). Refused attempts while locked do not extend it, so the
victim of someone else's guessing gets back in. Logins that match no account are counted by axes
itself (its AccessAttempt table, keyed by the lower-cased login) with the default policy, so they
behave the same to the person on the other side.
"""

from __future__ import annotations

import datetime
import logging

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

import audit
from audit.choices import AuditAction
from portal.requests import client_ip as _client_ip

from . import conf
from .choices import SignInFailure
from .models import AccountLockout, PasswordPolicy
from .validators import policy_for

logger = logging.getLogger(__name__)

# Very long, for axes, when the lockout lasts until an administrator clears it.
_UNTIL_CLEARED = datetime.timedelta(days=3650)


# -- The account an attempt is about ------------------------------------------------------------


def _login_of(request, credentials) -> str:
    login = ""
    if credentials:
        login = credentials.get("username") or credentials.get("login") or ""
    if not login and request is not None and request.method == "POST":
        login = request.POST.get("login", "")
    return str(login or "").strip()


def account(request, credentials=None):
    """Return the user an attempt names (by username or email), or None; cached on the request."""
    if request is not None and hasattr(request, "_lockout_account"):
        return request._lockout_account
    user = get_user_model().objects.find_by_login(_login_of(request, credentials)[:254])
    if request is not None:
        request._lockout_account = user
    return user


def _policy(request, credentials=None) -> PasswordPolicy:
    user = account(request, credentials) if request is not None else None
    return policy_for(user) if user is not None else PasswordPolicy()


def failure_window(policy: PasswordPolicy) -> datetime.timedelta:
    """Return how long a failure counts: the lockout duration, or a day when locks are permanent."""
    if policy.lockout_is_permanent:
        return datetime.timedelta(hours=conf.get("SECURITY_PERMANENT_LOCKOUT_WINDOW_HOURS"))
    return datetime.timedelta(minutes=policy.lockout_minutes)


# -- Callables named in the AXES_* settings -----------------------------------------------------


def axes_username(request, credentials=None) -> str:
    """AXES_USERNAME_CALLABLE: one key per account whichever login (username or email) was typed."""
    user = account(request, credentials)
    if user is not None:
        return user.username.lower()
    return _login_of(request, credentials).lower()[:255]


def failure_limit(request, credentials=None) -> int:
    """AXES_FAILURE_LIMIT: the failed sign-ins before lockout of the attempted account's owner."""
    return _policy(request, credentials).lockout_threshold


def cool_off(request) -> datetime.timedelta:
    """AXES_COOLOFF_TIME: the lockout duration of the attempted account's owner."""
    policy = _policy(request)
    return _UNTIL_CLEARED if policy.lockout_is_permanent else failure_window(policy)


def client_ip(request) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: the client address behind TRUSTED_PROXY_COUNT proxies."""
    return _client_ip(request)


# AXES_LOCKOUT_CALLABLE is the sign-in page's own: accounts.auth_views.locked_out.


# -- The per-account count ---------------------------------------------------------------------


def _locked_row(user) -> AccountLockout:
    AccountLockout.objects.bulk_create([AccountLockout(user_id=user.pk)], ignore_conflicts=True)
    return AccountLockout.objects.select_for_update().get(user_id=user.pk)


def _expire(row: AccountLockout, policy: PasswordPolicy, now) -> bool:
    """Clear a row whose lockout ran out or whose failures are too old; say whether it changed."""
    if row.failures == 0 and row.locked_at is None:
        return False
    if row.locked_at is not None:
        if policy.lockout_is_permanent or row.locked_at + failure_window(policy) > now:
            return False
    elif row.last_failure_at and row.last_failure_at + failure_window(policy) > now:
        return False
    row.failures, row.locked_at, row.last_failure_at = 0, None, None
    return True


def _is_locked_row(row: AccountLockout | None, policy: PasswordPolicy, now) -> bool:
    if row is None or row.failures < policy.lockout_threshold:
        return False
    if row.locked_at is not None:
        return policy.lockout_is_permanent or row.locked_at + failure_window(policy) > now
    # The limit was reached by attempts still in flight (or that never reported back).
    return bool(row.last_failure_at and row.last_failure_at + failure_window(policy) > now)


def is_locked(user, *, now=None) -> bool:
    """Say whether the user's account is locked out now."""
    now = now or timezone.now()
    row = AccountLockout.objects.filter(user_id=user.pk).first()
    return _is_locked_row(row, policy_for(user), now)


def locked_until(user, *, now=None) -> datetime.datetime | None:
    """Return when the user's lockout ends (None when not locked or locked until cleared)."""
    now = now or timezone.now()
    row = AccountLockout.objects.filter(user_id=user.pk).first()
    policy = policy_for(user)
    if not _is_locked_row(row, policy, now) or policy.lockout_is_permanent:
        return None
    return (row.locked_at or row.last_failure_at) + failure_window(policy)


def locked_user_ids(owner, *, now=None):
    """Return a queryset of the ids of the owner's locked-out users (for `pk__in=` filters)."""
    now = now or timezone.now()
    policy = PasswordPolicy.objects.filter(owner=owner).first() or PasswordPolicy()
    window_start = now - failure_window(policy)
    rows = AccountLockout.objects.filter(user__owner=owner, failures__gte=policy.lockout_threshold)
    if policy.lockout_is_permanent:
        rows = rows.filter(
            Q(locked_at__isnull=False) | Q(locked_at__isnull=True, last_failure_at__gt=window_start)
        )
    else:
        rows = rows.filter(
            Q(locked_at__gt=window_start)
            | Q(locked_at__isnull=True, last_failure_at__gt=window_start)
        )
    return rows.values_list("user_id", flat=True)


def begin_attempt(request, user, *, now=None) -> bool:
    """Reserve one attempt on the account before its password is checked; False when locked.

    The count goes up first, under a row lock, so parallel attempts can never exceed the limit.
    """
    now = now or timezone.now()
    policy = policy_for(user)
    with transaction.atomic():
        row = _locked_row(user)
        changed = _expire(row, policy, now)
        if row.failures >= policy.lockout_threshold:
            if changed:
                row.save()
            return False
        row.failures += 1
        row.last_failure_at = now
        row.save()
    if request is not None:
        request._lockout_reserved = user.pk
    return True


def release_attempt(request, user) -> None:
    """Give back the attempt reserved by this request (its password was right)."""
    if request is None or getattr(request, "_lockout_reserved", None) != user.pk:
        return
    request._lockout_reserved = None
    with transaction.atomic():
        row = _locked_row(user)
        if row.failures > 0 and row.locked_at is None:
            row.failures -= 1
            row.save(update_fields=["failures"])


def fail_attempt(request, user, reason: str, *, now=None) -> bool:
    """Count a failed attempt (its reservation, or a new one) and lock at the limit.

    Return whether the account is locked now. The attempt that locks it writes LOCKED_OUT.
    """
    now = now or timezone.now()
    policy = policy_for(user)
    reserved = request is not None and getattr(request, "_lockout_reserved", None) == user.pk
    if request is not None:
        request._lockout_reserved = None
    with transaction.atomic():
        row = _locked_row(user)
        if not reserved:
            _expire(row, policy, now)
            if _is_locked_row(row, policy, now):
                return True
            row.failures += 1
            row.last_failure_at = now
        locks_now = row.failures >= policy.lockout_threshold and row.locked_at is None
        if locks_now:
            row.locked_at = now
        row.save()
        if locks_now:
            audit.record(
                AuditAction.LOCKED_OUT,
                actor=None,
                actor_label=user.username,
                target=user,
                owner=user.owner_id,
                reason=f"{row.failures} failed attempts",
                context={
                    "failures": row.failures,
                    "last_reason": reason,
                    "lockout_minutes": policy.lockout_minutes,
                },
            )
    return locks_now or row.failures >= policy.lockout_threshold


def register_failure(request, user, reason: str) -> bool:
    """Count a failure of a later sign-in step (a wrong 2FA code, a wrong password on step-up).

    For other engineers' flows: call it for every refused code or password of a known user, and
    check `is_locked(user)` before accepting one. Return whether the account is locked now.
    """
    return fail_attempt(None, user, reason)


def reset(user) -> None:
    """Clear the account's failures (a completed sign-in, or an administrator's unlock)."""
    AccountLockout.objects.filter(user_id=user.pk).update(
        failures=0, locked_at=None, last_failure_at=None
    )
    AccessAttempt.objects.filter(username=user.username.lower()).delete()


# -- The axes handler --------------------------------------------------------------------------


class PolicyLockoutHandler(AxesDatabaseHandler):
    """Axes' database handler, with known accounts counted in `AccountLockout` atomically.

    Unknown logins keep axes' own AccessAttempt counting; its clean-up only removes rows of the
    login being tried, so one owner's short cool-off never clears another owner's lockout.
    """

    def is_allowed(self, request, credentials=None) -> bool:
        """Refuse blacklisted or locked attempts; reserve the attempt of a known account."""
        if self.is_blacklisted(request, credentials):
            return False
        if self.is_whitelisted(request, credentials):
            return True
        user = account(request, credentials)
        if user is None:
            return not self.is_locked(request, credentials)
        return begin_attempt(request, user)

    def is_locked(self, request, credentials=None) -> bool:
        user = account(request, credentials)
        if user is not None:
            return is_locked(user)
        return super().is_locked(request, credentials)

    def user_login_failed(self, sender, credentials: dict, request=None, **kwargs):
        """Count the failure; a refusal because of a lockout is recorded as such, not counted."""
        if request is None:
            return
        user = account(request, credentials)
        if getattr(request, "axes_locked_out", False):
            request.sign_in_failure = (SignInFailure.LOCKED_OUT, user)
            return
        if user is None:
            super().user_login_failed(sender, credentials, request, **kwargs)
            if getattr(request, "axes_locked_out", False):
                request.sign_in_failure = (SignInFailure.LOCKED_OUT, None)
            return
        reason, _known = getattr(request, "sign_in_failure", (SignInFailure.WRONG_PASSWORD, None))
        if reason in SignInFailure.NOT_COUNTED:
            release_attempt(request, user)
            return
        fail_attempt(request, user, reason)

    def user_logged_in(self, sender, request, user, **kwargs):
        super().user_logged_in(sender, request, user, **kwargs)
        reset(user)

    def clean_expired_user_attempts(self, request=None, credentials=None) -> int:
        if request is None:
            return 0
        threshold = timezone.now() - cool_off(request)
        username = get_client_username(request, credentials)
        if not username:
            return 0
        count, _ = AccessAttempt.objects.filter(
            username=username, attempt_time__lte=threshold
        ).delete()
        return count
