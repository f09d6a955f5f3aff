"""Encrypt secrets at rest (TOTP keys, outbox content, webhook secrets) with Fernet under
`settings.FIELD_ENCRYPTION_KEY`.

The setting holds one key, or several separated by commas to rotate: the first encrypts, every
one of them decrypts, so old rows stay readable until they are written again.
"""

from __future__ import annotations

from functools import cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


@cache
def _fernet(keys: str) -> MultiFernet:
    try:
        return MultiFernet([Fernet(key.strip()) for key in keys.split(",") if key.strip()])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEY must be urlsafe base64 of 32 bytes."
        ) from exc


def encrypt(value: bytes) -> str:
    """Return `value` encrypted and authenticated, as text safe for a database column."""
    return _fernet(settings.FIELD_ENCRYPTION_KEY).encrypt(value).decode("ascii")


def decrypt(token: str) -> bytes:
    """Return the plain bytes of an `encrypt` result; refuse a token no configured key opens."""
    try:
        return _fernet(settings.FIELD_ENCRYPTION_KEY).decrypt(token.encode("ascii"))
    except InvalidToken as exc:
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with FIELD_ENCRYPTION_KEY (was the key changed "
            "without keeping the old one after a comma?)."
        ) from exc
