"""Enumerations of the accounts app."""

from django.db import models


class UserKind(models.TextChoices):
    INTERACTIVE = "interactive", "Interactive"
    API = "api", "API"


class AuthSource(models.TextChoices):
    LOCAL = "local", "Local password"
    SAML = "saml", "Identity provider (SSO)"


class CustomerAccessScope(models.TextChoices):
    ALL = "all", "All customers"
    ASSIGNED = "assigned", "Assigned customers only"
    NONE = "none", "No customers"


class Locale(models.TextChoices):
    EN = "en", "English (US)"
    EN_GB = "en-gb", "English (UK)"
    DE = "de", "Deutsch"
    FR = "fr", "Français"
    ES = "es", "Español"
    NL = "nl", "Nederlands"


PRIVILEGE_LEVELS = [(n, str(n)) for n in range(0, 11)]
EXPERT_LEVELS = [
    (0, "0 - Standard"),
    (1, "1 - Advanced"),
    (2, "2 - Expert"),
    (3, "3 - Expert (bulk)"),
]


class AccessSource(models.TextChoices):
    """The door through which a user's record or access was written (stored on the event)."""

    SCREEN = "screen", "Screen"
    API = "api", "JSON API"
    REVIEW = "review", "Access review"
    SAML = "saml", "Single sign-on"
    SCIM = "scim", "SCIM provisioning"
    IMPORT = "import", "Import"
    SYSTEM = "system", "System"


# Doors through which an identity provider writes the fields it owns.
IDP_SOURCES = frozenset({AccessSource.SAML, AccessSource.SCIM})
