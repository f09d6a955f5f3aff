"""Single sign-on: each owner's SAML identity providers, their group mappings, the identities they
vouch for, and the assertion ids already consumed (the replay store shared by every process)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

__all__ = [
    "AttributePreset",
    "SamlAssertionId",
    "SamlGroupMapping",
    "SamlIdentityProvider",
    "SsoIdentity",
]


class AttributePreset(models.TextChoices):
    OKTA = "okta", "Okta"
    ENTRA = "entra", "Microsoft Entra ID (Azure AD)"
    CUSTOM = "custom", "Other identity provider"


ENTRA_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"

# The attribute names each preset fills in; an administrator may still change any of them.
PRESET_ATTRIBUTES: dict[str, dict[str, str]] = {
    AttributePreset.OKTA: {
        "username_attribute": "",
        "email_attribute": "email",
        "first_name_attribute": "firstName",
        "last_name_attribute": "lastName",
        "groups_attribute": "groups",
    },
    AttributePreset.ENTRA: {
        "username_attribute": ENTRA_CLAIMS + "name",
        "email_attribute": ENTRA_CLAIMS + "emailaddress",
        "first_name_attribute": ENTRA_CLAIMS + "givenname",
        "last_name_attribute": ENTRA_CLAIMS + "surname",
        "groups_attribute": "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
    },
}

# Entra ID sends this claim instead of the groups when a person is in more than 150 of them.
ENTRA_GROUPS_OVERAGE = "http://schemas.microsoft.com/claims/groups.link"

ATTRIBUTE_FIELDS = (
    "username_attribute",
    "email_attribute",
    "first_name_attribute",
    "last_name_attribute",
    "groups_attribute",
)


class SamlIdentityProviderQuerySet(models.QuerySet):
    def for_owner(self, owner):
        return self.filter(owner=owner)

    def enabled(self):
        return self.filter(enabled=True)


class SamlIdentityProvider(models.Model):
    """An identity provider that signs the owner's people in (Okta, Entra ID, any SAML 2.0 IdP).

    `metadata_xml` is the IdP's own metadata; only the signing keys in it are trusted for this
    provider. The attribute fields name the SAML attributes that carry each profile field (empty
    username attribute: the NameID is the login). People it vouches for are matched by
    (provider, NameID) through `SsoIdentity`, never by email.
    """

    owner = models.ForeignKey(
        "accounts.Owner", on_delete=models.CASCADE, related_name="identity_providers"
    )
    name = models.CharField(
        max_length=120, help_text='Shown on the sign-in page as "Sign in with <name>".'
    )
    slug = models.SlugField(max_length=60)
    entity_id = models.CharField(
        "entity ID", max_length=500, help_text="Read from the metadata.", editable=False
    )
    metadata_xml = models.TextField("metadata XML")
    preset = models.CharField(
        max_length=20, choices=AttributePreset.choices, default=AttributePreset.CUSTOM
    )
    username_attribute = models.CharField(
        max_length=300, blank=True, help_text="Empty: the NameID is the login."
    )
    email_attribute = models.CharField(max_length=300, blank=True)
    first_name_attribute = models.CharField(max_length=300, blank=True)
    last_name_attribute = models.CharField(max_length=300, blank=True)
    groups_attribute = models.CharField(max_length=300, blank=True)
    jit_provisioning = models.BooleanField(
        "create users at first sign-in",
        default=False,
        help_text="Off: only people who already have an identity here may sign in.",
    )
    default_role = models.ForeignKey(
        "roles.Role",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The role of people whose groups map to no role.",
    )
    allow_idp_initiated = models.BooleanField(
        "allow sign-in started at the identity provider",
        default=False,
        help_text="Off: only sign-ins started from this portal's sign-in page are accepted.",
    )
    enabled = models.BooleanField(default=True)
    row_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = SamlIdentityProviderQuerySet.as_manager()

    class Meta:
        db_table = "security_samlidentityprovider"
        ordering = ["name"]
        verbose_name = "identity provider"
        constraints = [
            models.UniqueConstraint("owner", "slug", name="samlidp_unique_slug_per_owner"),
            models.UniqueConstraint("owner", Lower("name"), name="samlidp_unique_name_per_owner"),
        ]
        indexes = [models.Index(fields=["entity_id"], name="samlidp_entity_id")]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.name


class SamlGroupMapping(models.Model):
    """Map a group the IdP sends (a name, or an Entra object ID) to a role and/or role groups.

    At every sign-in a person's role and extra role groups are set exactly from the mappings of
    the groups in the assertion: the first mapping (in list order) with a role gives the role.
    """

    provider = models.ForeignKey(
        SamlIdentityProvider, on_delete=models.CASCADE, related_name="group_mappings"
    )
    idp_group = models.CharField(
        "IdP group",
        max_length=300,
        help_text="As the IdP sends it: the group name (Okta) or object ID (Entra ID).",
    )
    role = models.ForeignKey(
        "roles.Role", on_delete=models.PROTECT, null=True, blank=True, related_name="+"
    )
    role_groups = models.ManyToManyField(
        "roles.RoleGroup",
        blank=True,
        related_name="+",
        db_table="security_samlgroupmapping_role_groups",
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "security_samlgroupmapping"
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                "provider", "idp_group", name="samlgroupmapping_unique_group_per_provider"
            )
        ]

    def __str__(self) -> str:
        return f"{self.idp_group} ({self.provider})"


class SsoIdentity(models.Model):
    """The user an identity provider means by a NameID; the only way SSO finds a user."""

    provider = models.ForeignKey(
        SamlIdentityProvider, on_delete=models.CASCADE, related_name="identities"
    )
    name_id = models.CharField("NameID", max_length=500)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sso_identities"
    )
    created_at = models.DateTimeField(default=timezone.now)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "security_ssoidentity"
        verbose_name_plural = "SSO identities"
        constraints = [
            models.UniqueConstraint("provider", "name_id", name="ssoidentity_unique_name_id")
        ]

    def __str__(self) -> str:
        return f"{self.name_id} at {self.provider}"


class SamlAssertionId(models.Model):
    """An assertion already used to sign in, kept until it expires so it cannot be replayed."""

    assertion_id = models.CharField(max_length=256, unique=True)
    provider = models.ForeignKey(SamlIdentityProvider, on_delete=models.CASCADE, related_name="+")
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        db_table = "security_samlassertionid"

    def __str__(self) -> str:
        return self.assertion_id
