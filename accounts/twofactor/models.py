"""Second factors and recovery: TOTP devices (keys encrypted at rest), backup and recovery codes
(stored hashed), and the counters that throttle guessing.

Devices follow django-otp's interfaces (`Device`, `ThrottlingMixin`, `TimestampMixin`) but are
this app's own models, so that nothing secret is kept in plain text:

- the TOTP key is encrypted with Fernet under `settings.FIELD_ENCRYPTION_KEY`;
- backup and recovery codes are random 60-bit strings kept as SHA-256 over a per-code random
  salt. A slow password hash (argon2, ~0.14 s) would add nothing for random codes of that length
  (stretching protects guessable, human-chosen secrets) and would cost over a second to check a
  typed code against ten stored ones; 2^60 salted SHA-256 guesses take years per code even with
  the table in hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from urllib.parse import quote, urlencode

from django.conf import settings
from django.db import models
from django.utils import timezone
from django_otp.models import Device, ThrottlingMixin, TimestampMixin
from django_otp.oath import TOTP

from portal.encryption import decrypt, encrypt

__all__ = [
    "BackupCode",
    "BackupCodeDevice",
    "RecoveryCode",
    "RecoveryPurpose",
    "RecoveryThrottle",
    "TOTPDevice",
]

CODE_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford's base 32: no i, l, o, u
CODE_LENGTH = 12  # 60 bits
_CONFUSABLE = str.maketrans({"i": "1", "l": "1", "o": "0"})


def new_code() -> str:
    """Return a fresh random code as people read it: `xxxx-xxxx-xxxx`."""
    raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return "-".join(raw[i : i + 4] for i in range(0, CODE_LENGTH, 4))


def normalise_code(code: str) -> str:
    """Return `code` as stored: lower case, without spaces or dashes, confusables mapped."""
    return "".join(ch for ch in (code or "").lower() if ch.isalnum()).translate(_CONFUSABLE)


def hash_code(code: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{normalise_code(code)}".encode()).hexdigest()


class HashedCode(models.Model):
    """A single-use code kept only as a salted hash."""

    salt = models.CharField(max_length=32, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(default=timezone.now)
    used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    def set_code(self, code: str) -> None:
        self.salt = secrets.token_hex(16)
        self.digest = hash_code(code, self.salt)

    def matches(self, code: str) -> bool:
        return hmac.compare_digest(self.digest, hash_code(code, self.salt))


class TOTPDevice(TimestampMixin, ThrottlingMixin, Device):
    """A person's authenticator app (RFC 6238, 30-second steps, 6 digits, ±1 step tolerated).

    The key is encrypted at rest. A code is accepted once: `last_t` remembers the time step of the
    last accepted code and only later steps are accepted afterwards. Wrong codes are throttled
    with django-otp's exponential delay (1, 2, 4, 8 … seconds times OTP_TOTP_THROTTLE_FACTOR).
    The device counts only once `confirmed` (the person typed a first code from it).
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="totp_device"
    )
    confirmed = models.BooleanField(default=False)
    encrypted_key = models.TextField(editable=False)
    step = models.PositiveSmallIntegerField(default=30)
    digits = models.PositiveSmallIntegerField(default=6)
    tolerance = models.PositiveSmallIntegerField(default=1)
    last_t = models.BigIntegerField(default=-1)
    confirmed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "TOTP device"

    @classmethod
    def with_new_key(cls, user, name: str = "Authenticator app") -> TOTPDevice:
        """Return an unsaved device of `user` with a fresh random 160-bit key."""
        device = cls(user=user, name=name, confirmed=False)
        device.set_key(secrets.token_bytes(20))
        return device

    def set_key(self, key: bytes) -> None:
        self.encrypted_key = encrypt(key)

    @property
    def bin_key(self) -> bytes:
        return decrypt(self.encrypted_key)

    @property
    def base32_secret(self) -> str:
        """Return the key as authenticator apps take it when typed: base 32, no padding."""
        return base64.b32encode(self.bin_key).decode().rstrip("=")

    def config_url(self) -> str:
        """Return the `otpauth://` URL that the QR code carries."""
        issuer = (getattr(settings, "OTP_TOTP_ISSUER", "") or "Billing Access").replace(":", "")
        label = f"{quote(issuer)}:{quote(self.user.get_username())}"
        params = urlencode(
            {
                "secret": self.base32_secret,
                "algorithm": "SHA1",
                "digits": self.digits,
                "period": self.step,
            }
        )
        return f"otpauth://totp/{label}?{params}&issuer={quote(issuer)}"

    def totp(self) -> TOTP:
        totp = TOTP(self.bin_key, self.step, 0, self.digits, 0)
        totp.time = timezone.now().timestamp()
        return totp

    def verify_token(self, token) -> bool:
        """Accept a code of the current step (±tolerance) never accepted before; throttle misses."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        token = "".join(ch for ch in str(token or "") if not ch.isspace())
        verified = False
        if token.isdigit() and len(token) == self.digits:
            totp = self.totp()
            verified = totp.verify(int(token), self.tolerance, self.last_t + 1)
        if verified:
            self.last_t = totp.t()
            self.throttle_reset(commit=False)
            self.set_last_used_timestamp(commit=False)
            self.save()
        else:
            self.throttle_increment(commit=True)
        return verified

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)


class BackupCodeDevice(ThrottlingMixin, Device):
    """The set of single-use backup codes of a person (ten, shown once, stored hashed)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="backup_code_device"
    )
    generated_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "backup code set"

    def remaining(self) -> int:
        return self.codes.filter(used_at__isnull=True).count()

    def verify_token(self, token) -> bool:
        """Accept an unused code once (the caller holds the row lock); throttle misses."""
        allowed, _ = self.verify_is_allowed()
        if not allowed:
            return False
        if normalise_code(token):
            for code in self.codes.select_for_update().filter(used_at__isnull=True):
                if code.matches(token):
                    code.used_at = timezone.now()
                    code.save(update_fields=["used_at"])
                    self.throttle_reset(commit=True)
                    return True
        self.throttle_increment(commit=True)
        return False

    def get_throttle_factor(self) -> int:
        return getattr(settings, "OTP_TOTP_THROTTLE_FACTOR", 1)


class BackupCode(HashedCode):
    """One backup code of a set; `used_at` is set when it is spent."""

    device = models.ForeignKey(BackupCodeDevice, on_delete=models.CASCADE, related_name="codes")

    def __str__(self) -> str:
        return f"backup code of {self.device.user_id}"


class RecoveryPurpose(models.TextChoices):
    ACCOUNT_RECOVERY = "account_recovery", "Account recovery (password or two-factor device)"


class RecoveryCode(HashedCode):
    """A code support staff had emailed to a user: single use, expiring, bound to one purpose.

    Staff never see it; only its salted hash is kept.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="recovery_codes"
    )
    purpose = models.CharField(
        max_length=30, choices=RecoveryPurpose.choices, default=RecoveryPurpose.ACCOUNT_RECOVERY
    )
    expires_at = models.DateTimeField()
    used_for = models.CharField(max_length=30, blank=True)
    sent_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    reason = models.CharField(max_length=300, blank=True)

    class Meta:
        indexes = [models.Index(fields=["user", "purpose", "expires_at"], name="recovery_live")]

    def __str__(self) -> str:
        return f"recovery code of {self.user_id}"

    def is_live(self, now=None) -> bool:
        now = now or timezone.now()
        return self.used_at is None and now < self.expires_at


class RecoveryThrottle(models.Model):
    """Consecutive wrong recovery codes per user and per client address, for exponential delay.

    Kept in the database so that every process behind a load balancer sees the same count.
    """

    class Scope(models.TextChoices):
        USER = "user", "User"
        IP = "ip", "Client address"

    scope = models.CharField(max_length=10, choices=Scope.choices)
    key = models.CharField(max_length=100)
    failure_count = models.PositiveIntegerField(default=0)
    last_failure_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scope", "key"], name="recovery_throttle_unique")
        ]

    def __str__(self) -> str:
        return f"{self.scope} {self.key}: {self.failure_count}"
