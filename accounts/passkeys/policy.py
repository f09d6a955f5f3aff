"""Who must sign in with a passkey, and whether a passkey alone may sign a person in.

The owner's policy (`security.models.PasswordPolicy`) holds both switches. "Privileged" is read
from the person's effective application permissions, so an elevation or a role change moves a
person in or out of the rule at once: holding any data-protection area, Users at full, or Approve
on Access Requests.
"""

from __future__ import annotations

from django_otp_webauthn.utils import get_credential_model

from roles import catalog, permissions


def credentials():
    """Return the manager of passkey credentials (django-otp-webauthn's device model)."""
    return get_credential_model().objects


def has_passkey(user) -> bool:
    """Say whether the user holds at least one confirmed passkey or security key."""
    return credentials().filter(user_id=user.pk, confirmed=True).exists()


def _policy(user):
    from security.validators import policy_for

    return policy_for(user)


def is_privileged(user, perms=None) -> bool:
    """Say whether the user holds a data-protection area, Users full or an approval right."""
    if user.is_superuser:
        return True
    perms = perms if perms is not None else permissions.for_user(user)
    if perms.has(catalog.USERS, catalog.FULL):
        return True
    if perms.has(catalog.ACCESS_REQUESTS, catalog.APPROVE):
        return True
    return any(
        area.is_data_protection and perms.level(area.code) != catalog.NONE
        for area in catalog.areas_for(catalog.Channel.APPLICATION)
    )


def phishing_resistant_required(user, perms=None) -> bool:
    """Say whether the owner's rule makes this user sign in with a passkey.

    Users of an identity provider are left to the provider's own sign-in rules.
    """
    if user.is_sso_managed or not _policy(user).require_phishing_resistant:
        return False
    return is_privileged(user, perms)


def codes_refused(user) -> bool:
    """Say whether TOTP and backup codes no longer complete this user's sign-in or step-up.

    True once a user under the phishing-resistant rule holds a passkey: until then a code still
    signs them in, and the enrolment middleware sends them to add a passkey before anything else.
    """
    return phishing_resistant_required(user) and has_passkey(user)


def passwordless_allowed(user) -> bool:
    """Say whether the user's owner lets a passkey alone sign people in."""
    return bool(_policy(user).allow_passwordless)
