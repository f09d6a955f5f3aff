"""Policy: each owner's password, lockout and session rules, and the password history they use."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

# A floor no owner can go under (NIST SP 800-63B: at least 8 with a second factor, 15 without).
ABSOLUTE_MIN_LENGTH = 8
MIN_LENGTH_WITHOUT_2FA = 15
MAX_LENGTH = 128


class PasswordPolicy(models.Model):
    """The owner's rules for local passwords, lockout and sessions.

    Defaults follow current guidance (NIST SP 800-63B, OWASP ASVS): a long minimum, any characters,
    no composition rules, no expiry and no history; an owner may switch those on for its auditors.
    """

    owner = models.OneToOneField(
        "accounts.Owner", on_delete=models.CASCADE, related_name="password_policy"
    )
    min_length = models.PositiveSmallIntegerField(
        default=MIN_LENGTH_WITHOUT_2FA,
        validators=[MinValueValidator(ABSOLUTE_MIN_LENGTH), MaxValueValidator(64)],
    )
    require_upper = models.BooleanField("require an upper-case letter", default=False)
    require_lower = models.BooleanField("require a lower-case letter", default=False)
    require_digit = models.BooleanField("require a digit", default=False)
    require_symbol = models.BooleanField("require a symbol", default=False)
    allowed_characters = models.CharField(
        max_length=500,
        blank=True,
        help_text="Leave empty to accept any character (recommended).",
    )
    history_depth = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(24)], help_text="0 = no history check."
    )
    expiry_days = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(3650)], help_text="0 = passwords never expire."
    )
    lockout_threshold = models.PositiveSmallIntegerField(
        "failed sign-ins before lockout",
        default=10,
        validators=[MinValueValidator(3), MaxValueValidator(100)],
    )
    lockout_minutes = models.PositiveIntegerField(
        "lockout duration (minutes)",
        default=15,
        validators=[MaxValueValidator(1440 * 30)],
        help_text="0 = until an administrator clears it.",
    )
    idle_timeout_minutes = models.PositiveIntegerField(
        default=30, validators=[MinValueValidator(1), MaxValueValidator(1440)]
    )
    absolute_timeout_hours = models.PositiveIntegerField(
        default=12, validators=[MinValueValidator(1), MaxValueValidator(24 * 30)]
    )
    require_2fa = models.BooleanField("require two-factor authentication", default=False)
    max_token_days = models.PositiveSmallIntegerField(
        "longest API token lifetime (days)",
        default=365,
        validators=[MinValueValidator(1), MaxValueValidator(3650)],
    )
    row_version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name_plural = "password policies"

    def __str__(self) -> str:
        return f"Password policy of {self.owner}"


class PasswordHistory(models.Model):
    """A previous password hash of a user, kept to refuse reuse when the policy asks."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="password_history"
    )
    password = models.CharField(max_length=256)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"password of user {self.user_id} set {self.created_at:%Y-%m-%d}"


from .saml_models import *  # noqa: E402,F403
