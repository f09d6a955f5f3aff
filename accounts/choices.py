"""Enumerations of the accounts app."""

from django.db import models


class UserKind(models.TextChoices):
    INTERACTIVE = "interactive", "Interactive"
    API = "api", "API"


class AuthSource(models.TextChoices):
    LOCAL = "local", "Local password"
    SAML = "saml", "Identity provider (SSO)"


class SignInFailure:
    """The exact reasons a password sign-in fails; only the audit log ever sees them."""

    UNKNOWN_USER = "unknown_user"
    WRONG_PASSWORD = "wrong_password"
    LOGIN_DISABLED = "login_disabled"
    API_USER = "api_user"
    SSO_MANAGED = "sso_managed"
    NO_PASSWORD = "no_password"
    LOCKED_OUT = "locked_out"
    MISSING_FIELDS = "missing_fields"
    ADDRESS_NOT_ALLOWED = "address_not_allowed"
    OUTSIDE_ALLOWED_HOURS = "outside_allowed_hours"
    UNKNOWN_PASSKEY = "unknown_passkey"
    PASSKEY_REFUSED = "passkey_refused"
    PASSWORDLESS_NOT_ALLOWED = "passwordless_not_allowed"

    LABELS = {
        UNKNOWN_USER: "No user with this login",
        WRONG_PASSWORD: "Wrong password",
        LOGIN_DISABLED: "User has no Login flag",
        API_USER: "API users cannot sign in to the application",
        SSO_MANAGED: "User signs in through the identity provider",
        NO_PASSWORD: "User has no password set",
        LOCKED_OUT: "Locked out",
        MISSING_FIELDS: "Login or password missing",
        ADDRESS_NOT_ALLOWED: "Signed in from an address outside the user's allowed networks",
        OUTSIDE_ALLOWED_HOURS: "Signed in outside the user's allowed hours",
        UNKNOWN_PASSKEY: "No user has this passkey",
        PASSKEY_REFUSED: "The passkey's response was refused",
        PASSWORDLESS_NOT_ALLOWED: "The owner's policy does not allow passwordless sign-in",
    }
    # Refusals of a right password that do not count towards a lockout.
    NOT_COUNTED = frozenset({ADDRESS_NOT_ALLOWED, OUTSIDE_ALLOWED_HOURS})


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
