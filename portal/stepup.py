"""Step-up for screens: sensitive actions need a recent proof of identity in the session.

A proof is recorded at sign-in and on the re-authentication page (`security:reauthenticate`,
where `security.stepup.prove_identity` checks the password and a two-factor code), which returns
to the action afterwards. Any app's screens apply it in one of three ways:

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

How recent is recent: `SECURITY_STEP_UP_MINUTES` (5 by default, as in `security.conf`).
"""

from __future__ import annotations

import datetime
import functools

from django.conf import settings
from django.contrib import messages
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme, urlencode

PROOF_AT = "proof_at"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_MINUTES = 5  # security.conf's SECURITY_STEP_UP_MINUTES default


def proof_minutes() -> int:
    """Return how recent a proof must be, in minutes (SECURITY_STEP_UP_MINUTES)."""
    return getattr(settings, "SECURITY_STEP_UP_MINUTES", DEFAULT_MINUTES)


def mark_proof(request, *, now=None) -> None:
    """Record that the person just proved who they are (sign-in, re-authentication)."""
    request.session[PROOF_AT] = (now or timezone.now()).isoformat()


def has_recent_proof(request, minutes: int | None = None, *, now=None) -> bool:
    """Say whether the person proved who they are within the last `minutes`."""
    minutes = proof_minutes() if minutes is None else minutes
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
