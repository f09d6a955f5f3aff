"""Refuse local passwords for people who sign in through an identity provider.

Listed first in AUTH_PASSWORD_VALIDATORS, so every path that sets a password (administrator,
self-service, access-email link, recovery code) refuses it for an SSO-managed user, since each
calls `validate_password(password, user)`.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError

from accounts.choices import AuthSource


class NoLocalPasswordForSsoUsers:
    """Refuse any password for a user whose auth source is the identity provider."""

    def validate(self, password: str, user=None) -> None:
        if user is not None and getattr(user, "auth_source", None) == AuthSource.SAML:
            raise ValidationError(
                "This person signs in through the organisation's identity provider, so a "
                "password cannot be set here.",
                code="password_sso_managed",
            )

    def get_help_text(self) -> str:
        return "People who sign in through an identity provider have no password here."
