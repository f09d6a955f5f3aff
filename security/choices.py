"""Enumerations of the security app."""


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
