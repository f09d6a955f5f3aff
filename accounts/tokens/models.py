"""Bearer tokens: the base API and SCIM tokens share, and a user's API token.

Only a hash of a token's secret is kept (see `accounts.tokens.lifecycle`). The models are
registered in the accounts app (`accounts.models` imports them), so their table and migrations
stay `accounts_*`; SCIM's token builds on `TokenBase` in its own app.
"""

from __future__ import annotations

import hmac
from typing import ClassVar

from django.conf import settings
from django.db import models
from django.utils import timezone

from .lifecycle import hash_secret

__all__ = ["ApiToken"]


class TokenQuerySet(models.QuerySet):
    def live(self, now=None):
        """Return the tokens that are neither revoked nor expired at `now`."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class TokenBase(models.Model):
    """A bearer token `<KIND>_<prefix>_<secret>`: name, hashed secret, expiry, use, revocation.

    A subclass sets `KIND` (the start of the token's text), says who holds the token, and has a
    manager from `TokenQuerySet` (`live()`).
    """

    KIND: ClassVar[str]

    name = models.CharField(max_length=120)
    prefix = models.CharField(max_length=16, unique=True)
    secret_hash = models.CharField(max_length=64)
    created_at = models.DateTimeField(default=timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    class Meta:
        abstract = True
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        """Return the visible start of the token, enough to recognise it."""
        return f"{self.KIND}_{self.prefix}_…"

    def text(self, secret: str) -> str:
        """Return the token's full text with `secret`: shown once, never kept."""
        return f"{self.KIND}_{self.prefix}_{secret}"

    def secret_matches(self, secret: str) -> bool:
        """Say whether `secret` is the token's, compared in constant time."""
        return hmac.compare_digest(self.secret_hash, hash_secret(secret))

    def state(self, now=None) -> str:
        """Return "revoked", "expired" or "active"."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at <= (now or timezone.now()):
            return "expired"
        return "active"

    @property
    def is_active(self) -> bool:
        return self.state() == "active"


class ApiTokenQuerySet(TokenQuerySet):
    def for_owner(self, owner):
        return self.filter(user__owner=owner)


class ApiToken(TokenBase):
    """A bearer token of one user: `ba_<prefix>_<secret>`, of which only a hash is kept.

    The token never exceeds its user: at each request its reach is the user's current API-channel
    permissions, narrowed by `read_only` and by `areas` (a subset of API area codes; empty means
    every area the user holds). `allowed_networks` (CIDRs) limits where it may be used from.
    """

    KIND: ClassVar[str] = "ba"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    read_only = models.BooleanField(default=False)
    areas = models.JSONField(default=list, blank=True)
    allowed_networks = models.JSONField(default=list, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta(TokenBase.Meta):
        indexes = [models.Index(fields=["user", "-created_at"], name="apitoken_user_created")]

    @property
    def area_labels(self) -> list[str]:
        """Return the labels of the API areas the token is limited to."""
        from roles import catalog

        return [catalog.BY_CODE[c].label if c in catalog.BY_CODE else c for c in self.areas]

    @property
    def owner(self):
        return self.user.owner
