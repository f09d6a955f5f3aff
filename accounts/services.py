"""Account actions: sign-in and sign-out, each with its audit event."""

from __future__ import annotations

from django.contrib import auth
from django.db import transaction
from django.utils import timezone

import audit
from audit.choices import AuditAction

from .backends import SignInFailure


def record_sign_in(request, user, *, method: str = "password", second_factor: str = "") -> None:
    """Start the user's session (a new session key) and record the sign-in."""
    with transaction.atomic():
        auth.login(request, user, backend="accounts.backends.PortalBackend")
        now = timezone.now()
        request.session["signed_in_at"] = now.isoformat()
        request.session["auth_method"] = method
        type(user).objects.filter(pk=user.pk).update(last_sign_in_at=now)
        audit.record(
            AuditAction.SIGN_IN,
            actor=user,
            target=user,
            method=method,
            context={"second_factor": second_factor} if second_factor else {},
        )


def record_sign_in_failure(login: str, reason: str, user=None, *, method: str = "password") -> None:
    """Record a refused sign-in with its exact reason (never shown to the person)."""
    with transaction.atomic():
        audit.record(
            AuditAction.SIGN_IN_FAILED,
            actor=None,
            actor_label=(login or "")[:150],
            target=user,
            owner=getattr(user, "owner", None),
            subject_user=user,
            reason=SignInFailure.LABELS.get(reason, reason),
            method=method,
            context={"reason": reason, "login": (login or "")[:150]},
        )


def sign_out(request) -> None:
    """End the current session and record it."""
    user = request.user
    with transaction.atomic():
        if user.is_authenticated:
            audit.record(AuditAction.SIGN_OUT, actor=user, target=user)
        auth.logout(request)
