"""SCIM tokens: create, revoke and authenticate, each with its audit event.

A token reads `scim_<prefix>_<secret>`; it is issued, hashed and checked like an API token
(`accounts.tokens.lifecycle`).
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.http import Http404
from django.utils import timezone

from accounts.tokens import lifecycle

from .models import ScimToken

TOKEN_PATTERN = lifecycle.text_pattern(ScimToken.KIND)
CONTEXT_KIND = "scim"


class ScimTokenRefused(Exception):
    """A bearer token was refused; the reason is for the audit log, never for the caller."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _context(token: ScimToken) -> dict:
    return {
        "kind": CONTEXT_KIND,
        "prefix": token.prefix,
        "name": token.name,
        "expires_at": token.expires_at.isoformat(),
        "provider": token.provider.name if token.provider_id else None,
    }


def create_token(
    *, actor, reason: str, name: str, expires_at: datetime.datetime, provider=None, now=None
) -> tuple[ScimToken, str]:
    """Create a SCIM token for the actor's owner and return it with its text, never kept.

    The expiry is required, at most the owner's `max_token_days` away; the identity provider,
    when given, must be the owner's.
    """
    now = now or timezone.now()
    errors = {}
    name = (name or "").strip()
    name_error = lifecycle.name_error(
        name, missing="Name the identity provider that uses this token, such as Okta."
    )
    if name_error:
        errors["name"] = name_error
    expiry_error = lifecycle.expiry_error(expires_at, owner=actor.owner, now=now)
    if expiry_error:
        errors["expires_at"] = expiry_error
    if provider is not None and provider.owner_id != actor.owner_id:
        errors["provider"] = "Choose an identity provider of your organisation."
    if errors:
        raise ValidationError(errors)
    return lifecycle.issue(
        ScimToken,
        actor=actor,
        reason=reason,
        now=now,
        audited=lambda token: {
            "owner": actor.owner,
            "details": "SCIM provisioning token created.",
            "context": _context(token),
        },
        owner=actor.owner,
        name=name,
        provider=provider,
        expires_at=expires_at,
    )


def revoke_token(token: ScimToken, *, actor, reason: str, now=None) -> None:
    """Revoke a SCIM token at once: the provider's next request answers 401."""
    if token.owner_id != actor.owner_id:
        raise Http404("Not found.")
    lifecycle.revoke(
        token,
        actor=actor,
        reason=reason,
        now=now or timezone.now(),
        owner=token.owner_id,
        details="SCIM provisioning token revoked.",
        context=_context(token),
    )


def authenticate(raw: str, *, now=None) -> ScimToken:
    """Return the live token for a bearer string, or raise ScimTokenRefused."""
    now = now or timezone.now()
    match = TOKEN_PATTERN.match(raw or "")
    if match is None:
        raise ScimTokenRefused("malformed")
    prefix, secret = match.groups()
    token = ScimToken.objects.select_related("owner", "provider").filter(prefix=prefix).first()
    if token is None:
        raise ScimTokenRefused("unknown")
    if not token.secret_matches(secret):
        raise _refuse(token, "Wrong secret for the prefix", now)
    if token.revoked_at is not None:
        raise _refuse(token, "Token revoked", now)
    if token.expires_at <= now:
        raise _refuse(token, "Token expired", now)
    lifecycle.mark_used(token, now)
    return token


def _refuse(token: ScimToken, reason: str, now) -> ScimTokenRefused:
    """Audit a refusal of a known token, at most once a minute per token and reason."""
    lifecycle.record_refusal(
        token,
        key=f"scim-token-refused:{token.pk}:{reason.replace(' ', '-')}",
        label=f"SCIM token {token.display_prefix}",
        reason=reason,
        owner=token.owner_id,
        method="scim",
        context={"kind": CONTEXT_KIND, "prefix": token.prefix},
    )
    return ScimTokenRefused(reason)
