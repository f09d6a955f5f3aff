"""Provisioning (SCIM): the identity provider's bearer tokens, its groups and its user links."""

from __future__ import annotations

from typing import ClassVar

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from accounts.tokens.models import TokenBase, TokenQuerySet

__all__ = ["ScimGroup", "ScimToken", "ScimUserLink"]


class ScimToken(TokenBase):
    """A bearer token with which one identity provider provisions one owner's users.

    It reads `scim_<prefix>_<secret>`; only the SHA-256 of the secret is kept. The optional
    identity provider says whose SAML group mappings turn SCIM group membership into roles, and
    links provisioned people to that provider for single sign-on.
    """

    KIND: ClassVar[str] = "scim"

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    provider = models.ForeignKey(
        "sso.SamlIdentityProvider",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        help_text="Its group mappings turn SCIM group membership into roles and role groups.",
    )

    objects = TokenQuerySet.as_manager()

    @property
    def actor_label(self) -> str:
        """Who the audit log names for changes made with this token."""
        return f"SCIM: {self.name}"[:150]


class ScimUserLink(models.Model):
    """What the identity provider knows of a user: its externalId, and whether it removed it.

    A user removed over SCIM whose history must be kept stays deactivated and is hidden from
    SCIM (`removed_at`), so the provider sees it gone as RFC 7644 requires.
    """

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="scim_link"
    )
    external_id = models.CharField(max_length=300, blank=True)
    removed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                "owner",
                "external_id",
                condition=~Q(external_id=""),
                name="scimuserlink_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.external_id or str(self.user_id)


class ScimGroup(models.Model):
    """A group of the identity provider; its name is what the SAML group mappings match."""

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    display_name = models.CharField(max_length=300)
    external_id = models.CharField(max_length=300, blank=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)
    row_version = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["display_name", "id"]
        constraints = [
            models.UniqueConstraint(
                "owner",
                models.functions.Lower("display_name"),
                name="scimgroup_unique_name_per_owner",
            )
        ]

    def __str__(self) -> str:
        return self.display_name
