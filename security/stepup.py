"""Step-up: proving who one is again before a sensitive action (password, and a code with 2FA).

The session side (whether the last proof is recent, the decorator and mixin that send a person
to confirm it is them) is the screens' plumbing in `portal.stepup`, usable by any app. This module
checks the proof itself on the re-authentication page (`security:reauthenticate`): the password,
then a two-factor code through the check the accounts app registers, with the lockout counting
a refusal; a success is marked in the session (`portal.stepup.mark_proof`) and audited.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.core.exceptions import ImproperlyConfigured

import audit
from audit.choices import AuditAction
from portal.stepup import mark_proof

from . import lockout


def second_factor_required(user) -> bool:
    """Say whether the user holds a confirmed two-factor device (then step-up asks for a code)."""
    try:
        from django_otp import devices_for_user
    except ImportError:
        return False
    from django.apps import apps

    if not apps.is_installed("django_otp"):
        return False
    return any(True for _ in devices_for_user(user, confirmed=True))


# The check of a two-factor code. The accounts app owns the devices and registers its check when
# it is ready, so that a code entered at step-up is throttled, audited and counted towards the
# lockout exactly as at sign-in.
_second_factor_check: Callable[..., Any] | None = None


def register_second_factor_check(check: Callable[..., Any]) -> None:
    """Name the function that checks a code: check(user, code, *, stage) -> a result with
    `accepted` and `locked`."""
    global _second_factor_check
    _second_factor_check = check


def verify_second_factor(user, code: str):
    """Check a two-factor code of `user` entered at step-up (audited and counted by the check)."""
    if _second_factor_check is None:
        raise ImproperlyConfigured("No two-factor check is registered (accounts app missing).")
    return _second_factor_check(user, code, stage="step_up")


@dataclass(frozen=True)
class Proof:
    """The outcome of `prove_identity`: accepted, or refused (and whether the account is now
    locked, or the code was refused for coming too soon after a wrong one)."""

    accepted: bool = False
    locked: bool = False
    throttled: bool = False


def prove_identity(request, user, *, password: str, code: str = "") -> Proof:
    """Check the person's password again, and a two-factor code when they hold a device.

    A wrong password counts once towards the lockout and the code is not tried (so it is not
    spent); a code goes through the sign-in check, which audits a refusal and counts it. On
    success the proof is marked in the session and STEP_UP recorded.
    """
    if not (user.has_usable_password() and user.check_password(password)) or lockout.is_locked(
        user
    ):
        return Proof(locked=lockout.register_failure(request, user, "step_up_refused"))
    context = {}
    if second_factor_required(user):
        result = verify_second_factor(user, code)
        if not result.accepted:
            return Proof(locked=result.locked, throttled=result.throttled)
        context = {"second_factor": result.method}
    mark_proof(request)
    audit.record(AuditAction.STEP_UP, actor=user, target=user, method="password", context=context)
    return Proof(accepted=True)
