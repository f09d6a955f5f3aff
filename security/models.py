"""Policy: each owner's password, lockout and session rules, and the password history they use."""

from __future__ import annotations

import ipaddress
import zoneinfo

from django.conf import settings
from django.core.exceptions import ValidationError
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
        help_text=(
            "Symbols and spaces accepted besides letters and digits. Leave empty to accept any "
            "character (recommended)."
        ),
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
    # Passkeys (accounts.passkeys): a passkey alone may sign people in; privileged people (a
    # data-protection area, Users full, Approve on Access Requests) must use one.
    allow_passwordless = models.BooleanField(
        "allow passwordless sign-in with a passkey", default=False
    )
    require_phishing_resistant = models.BooleanField(
        "require phishing-resistant sign-in for privileged users", default=False
    )
    notify_new_sign_in = models.BooleanField(
        "email people about sign-ins from a new device or country",
        default=True,
    )
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

    def clean(self):
        """Refuse a minimum length under the floor: 8 with 2FA required, 15 without."""
        super().clean()
        floor = ABSOLUTE_MIN_LENGTH if self.require_2fa else MIN_LENGTH_WITHOUT_2FA
        if self.min_length is not None and self.min_length < floor:
            if self.require_2fa:
                message = f"The minimum length cannot be below {ABSOLUTE_MIN_LENGTH}."
            else:
                message = (
                    f"Without two-factor authentication the minimum length cannot be below "
                    f"{MIN_LENGTH_WITHOUT_2FA} (NIST SP 800-63B). Require 2FA to go as low as "
                    f"{ABSOLUTE_MIN_LENGTH}."
                )
            raise ValidationError({"min_length": message})

    @property
    def lockout_is_permanent(self) -> bool:
        """Say whether a lockout lasts until an administrator clears it."""
        return self.lockout_minutes == 0


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


class AccountLockout(models.Model):
    """The failed sign-in count of one account, updated atomically (row lock) on every attempt.

    `failures` counts attempts in the current window, including attempts still being checked, so
    that parallel guesses can never exceed the owner's limit. The account is locked while
    `failures` reaches the limit and the lockout has not run out (see security.lockout).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="lockout_state",
    )
    failures = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)
    locked_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"lockout state of user {self.user_id}: {self.failures} failures"


class UserSession(models.Model):
    """A signed-in session of a user: where and when it was used, and whether it was ended.

    Only a hash of the session key is kept; an ended session is refused at its next request.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="tracked_sessions"
    )
    key_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-last_seen_at", "-id"]
        indexes = [models.Index(fields=["user", "ended_at"], name="usersession_user_live")]

    def __str__(self) -> str:
        return f"session of user {self.user_id} from {self.ip or 'unknown address'}"

    @property
    def is_live(self) -> bool:
        return self.ended_at is None


def validate_networks(value: str) -> None:
    """Refuse a network list with an entry that is not an IP address or CIDR network."""
    bad = []
    for entry in split_networks(value):
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            bad.append(entry)
    if bad:
        raise ValidationError(
            "Not an IP address or network (such as 203.0.113.0/24): " + ", ".join(bad)
        )


def split_networks(value: str) -> list[str]:
    """Return the entries of a network list written one per line or separated by commas."""
    return [part.strip() for part in (value or "").replace(",", "\n").splitlines() if part.strip()]


class SignInRestriction(models.Model):
    """Optional limits on where and when one user may sign in.

    Empty networks mean any address; no hours mean any time. Hours are read in the user's time
    zone; an end before the start spans midnight (22:00 to 06:00).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sign_in_restriction"
    )
    allowed_networks = models.TextField(
        blank=True,
        validators=[validate_networks],
        help_text="One IP address or network per line (such as 203.0.113.0/24). Empty: any.",
    )
    allowed_from = models.TimeField("allowed from", null=True, blank=True)
    allowed_until = models.TimeField("allowed until", null=True, blank=True)
    row_version = models.PositiveIntegerField(default=1)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"sign-in restriction of user {self.user_id}"

    def clean(self):
        super().clean()
        if (self.allowed_from is None) != (self.allowed_until is None):
            raise ValidationError(
                "Give both the start and the end of the allowed hours, or neither."
            )
        if self.allowed_from is not None and self.allowed_from == self.allowed_until:
            raise ValidationError({"allowed_until": "The end must differ from the start."})

    @property
    def networks(self) -> list:
        return [
            ipaddress.ip_network(n, strict=False) for n in split_networks(self.allowed_networks)
        ]

    def allows_address(self, ip: str | None) -> bool:
        """Say whether `ip` is inside one of the allowed networks (any address when none)."""
        networks = self.networks
        if not networks:
            return True
        try:
            address = ipaddress.ip_address(ip or "")
        except ValueError:
            return False
        return any(address in network for network in networks)

    def allows_time(self, moment) -> bool:
        """Say whether `moment` (aware) falls inside the allowed hours in the user's zone."""
        if self.allowed_from is None or self.allowed_until is None:
            return True
        try:
            zone = zoneinfo.ZoneInfo(self.user.time_zone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            zone = zoneinfo.ZoneInfo("UTC")
        local = moment.astimezone(zone).time()
        start, end = self.allowed_from, self.allowed_until
        if start < end:
            return start <= local < end
        return local >= start or local < end
