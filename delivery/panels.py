"""The user record's "Emails" panel, and the sweep of overdue emails."""

from __future__ import annotations

from . import email
from .models import OutboundEmail

PANEL_ROWS = 10


def emails_of(request, subject) -> dict | None:
    """Return the latest emails to `subject` with their delivery state (never their bodies)."""
    rows = list(
        OutboundEmail.objects.filter(user=subject)
        .only(
            "kind",
            "to",
            "subject",
            "state",
            "attempts",
            "max_attempts",
            "last_error",
            "created_at",
            "next_attempt_at",
            "sent_at",
        )
        .order_by("-created_at", "-id")[:PANEL_ROWS]
    )
    return {"emails": rows}


def overdue_emails(now) -> int:
    return email.requeue_overdue(now)
