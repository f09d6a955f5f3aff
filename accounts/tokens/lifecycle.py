"""The life of a bearer token, the same for API and SCIM tokens: issue, read, check, use, revoke.

A token reads `<kind>_<prefix>_<secret>` (`ba_…` for the API, `scim_…` for SCIM). The prefix is
stored as is: it finds the row and lets people recognise a token. The 32-byte random secret is
kept only as its SHA-256, which is the right hash for a high-entropy secret (no stretching
needed), and is compared in constant time. The full text is shown once, at creation.

The token models share their fields and single-row methods through `TokenBase`
(`accounts.tokens.models`). Issuing, revoking and refusing write their audit events here; who
may hold a token, its scope and what its events say stay with each kind
(`accounts.tokens.services`, `scim.tokens`).
"""

from __future__ import annotations

import datetime
import hashlib
import re
import secrets
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import transaction

import audit
from audit.choices import AuditAction

# The functions below take any token model or row built on TokenBase (`accounts.tokens.models`),
# which imports this module and so is not imported back.
DEFAULT_MAX_DAYS = 365
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)
REFUSAL_AUDIT_SECONDS = 60


def text_pattern(kind: str) -> re.Pattern[str]:
    """Return the pattern of a token's full text of `kind`, capturing its prefix and secret."""
    return re.compile(rf"^{re.escape(kind)}_([a-z0-9]{{8}})_([A-Za-z0-9_-]{{43}})$")


def hash_secret(secret: str) -> str:
    """Return the SHA-256 of a token's secret, the only form in which it is kept."""
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def max_days(owner) -> int:
    """Return the longest token lifetime the owner's policy allows, in days."""
    policy = getattr(owner, "password_policy", None)
    try:
        return policy.max_token_days if policy is not None else DEFAULT_MAX_DAYS
    except Exception:  # noqa: BLE001 - no policy row yet: the product default
        return DEFAULT_MAX_DAYS


def expiry_error(expires_at: datetime.datetime | None, *, owner, now) -> str | None:
    """Say what is wrong with a new token's expiry (required, at most `max_days` away), if any."""
    longest = max_days(owner)
    if expires_at is None or expires_at <= now:
        return "Choose an expiry in the future."
    if expires_at > now + datetime.timedelta(days=longest, minutes=1):
        return f"A token may live at most {longest} days in this organisation."
    return None


def name_error(name: str, *, missing: str) -> str | None:
    """Say what is wrong with a new token's name (required, at most 120 characters), if any."""
    if not name:
        return missing
    if len(name) > 120:
        return "Use at most 120 characters."
    return None


def new_secret() -> str:
    """Return a new random secret (32 bytes, URL-safe text)."""
    return secrets.token_urlsafe(32)


def free_prefix(model: Any) -> str:
    """Return a random visible prefix that no token of `model` uses yet."""
    for _ in range(10):
        prefix = secrets.token_hex(4)
        if not model.objects.filter(prefix=prefix).exists():
            return prefix
    raise RuntimeError("Could not find a free token prefix.")  # pragma: no cover


def issue(
    model: Any, *, actor, reason: str, now, audited: Callable[[Any], dict], **fields
) -> tuple[Any, str]:
    """Create a token of `model` with a new secret and its "token created" event; return the
    token and its full text, which is never kept.

    `audited(token)` returns the event's other fields (owner, subject, context, details).
    """
    secret = new_secret()
    with transaction.atomic():
        token = model.objects.create(
            prefix=free_prefix(model),
            secret_hash=hash_secret(secret),
            created_at=now,
            created_by=actor,
            **fields,
        )
        audit.record(
            AuditAction.TOKEN_CREATED, actor=actor, target=token, reason=reason, **audited(token)
        )
    return token, token.text(secret)


def revoke(token: Any, *, actor, reason: str, now, **audited) -> None:
    """Revoke the token at once, with its "token revoked" event; revoking twice is refused."""
    with transaction.atomic():
        mark_revoked(token, actor=actor, now=now)
        audit.record(AuditAction.TOKEN_REVOKED, actor=actor, target=token, reason=reason, **audited)


def record_refusal(token: Any, *, key: str, label: str, reason: str, **audited) -> None:
    """Audit a refusal of a known token, at most once a minute per `key` (token and reason)."""
    if refusal_due(key):
        with transaction.atomic():
            audit.record(
                AuditAction.TOKEN_REFUSED,
                actor=None,
                actor_label=label,
                target=token,
                reason=reason,
                **audited,
            )


def mark_used(token: Any, now: datetime.datetime) -> None:
    """Record the token's use, at most once a minute so that busy callers cost no write each."""
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        type(token).objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now


def mark_revoked(token: Any, *, actor, now: datetime.datetime) -> None:
    """Revoke the token at once (call inside the transaction that audits it); twice is refused."""
    updated = (
        type(token)
        .objects.filter(pk=token.pk, revoked_at__isnull=True)
        .update(revoked_at=now, revoked_by=actor)
    )
    if not updated:
        raise ValidationError("This token is already revoked.")
    token.refresh_from_db(fields=["revoked_at", "revoked_by"])


def refusal_due(key: str) -> bool:
    """Say whether a refusal under `key` is to be audited: at most once a minute per key."""
    return cache.add(key, 1, REFUSAL_AUDIT_SECONDS)
