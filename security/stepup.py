"""Step-up: sensitive actions need a recent proof of identity (the password, and the code with 2FA).

A proof is recorded at sign-in and on the re-authentication page (`security:reauthenticate`),
which returns to the action afterwards. Apply it to a sensitive action in one of three ways:

    # a function view: checked for unsafe methods (POST...) by default; methods=None checks all
    @requires(catalog.USERS, catalog.FULL)
    @recent_proof_required(minutes=5)
    def token_create(request): ...

    # a class view
    class ResetTwoFactorView(RecentProofRequiredMixin, PortalFormView):
        proof_minutes = 5

    # inside a view, when only some branches are sensitive (granting data-protection areas)
    if grants_data_protection:
        refusal = require_recent_proof(request, minutes=5)
        if refusal:
            return refusal

A refused request is sent to the re-authentication page with `next` set to the page it came
from (for a POST: the page that showed the form), and the person submits again after it.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ImproperlyConfigured
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

import audit
from audit.choices import AuditAction

from . import conf, lockout

PROOF_AT = "proof_at"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def mark_proof(request, *, now=None) -> None:
    """Record that the person just proved who they are (sign-in, re-authentication)."""
    request.session[PROOF_AT] = (now or timezone.now()).isoformat()


def has_recent_proof(request, minutes: int | None = None, *, now=None) -> bool:
    """Say whether the person proved who they are within the last `minutes`."""
    minutes = conf.get("SECURITY_STEP_UP_MINUTES") if minutes is None else minutes
    value = request.session.get(PROOF_AT)
    if not value:
        return False
    try:
        proved = datetime.datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return False
    return (now or timezone.now()) - proved < datetime.timedelta(minutes=minutes)


def _return_path(request) -> str:
    if request.method in SAFE_METHODS:
        return request.get_full_path()
    referer = request.META.get("HTTP_REFERER", "")
    if referer and url_has_allowed_host_and_scheme(
        referer, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return referer
    return request.path


def require_recent_proof(request, minutes: int | None = None):
    """Return a redirect to the re-authentication page when the last proof is too old, else None."""
    if has_recent_proof(request, minutes):
        return None
    if request.method not in SAFE_METHODS:
        messages.warning(
            request, "Confirm it is you, then submit the change again. Nothing was changed."
        )
    url = reverse("security:reauthenticate") + "?" + urlencode({"next": _return_path(request)})
    return redirect(url)


def recent_proof_required(minutes: int | None = None, *, methods=None):
    """Decorate a view so that it needs a recent proof (for unsafe methods, or all of `methods`)."""

    def decorate(view):
        @functools.wraps(view)
        def wrapped(request, *args, **kwargs):
            checked = methods is None and request.method not in SAFE_METHODS
            checked = checked or (methods is not None and request.method in methods)
            if checked:
                refusal = require_recent_proof(request, minutes)
                if refusal is not None:
                    return refusal
            return view(request, *args, **kwargs)

        return wrapped

    return decorate


class RecentProofRequiredMixin:
    """Class-view form of `recent_proof_required`; put it first among the bases."""

    proof_minutes: int | None = None
    proof_methods: frozenset[str] | None = None

    def dispatch(self, request, *args, **kwargs):
        methods = self.proof_methods
        checked = (methods is None and request.method not in SAFE_METHODS) or (
            methods is not None and request.method in methods
        )
        if checked and request.user.is_authenticated:
            refusal = require_recent_proof(request, self.proof_minutes)
            if refusal is not None:
                return refusal
        return super().dispatch(request, *args, **kwargs)


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
