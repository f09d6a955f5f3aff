"""Signatures by the Standard Webhooks conventions (https://www.standardwebhooks.com/).

Every delivery carries `webhook-id` (the message id, the same on every retry), `webhook-timestamp`
(Unix seconds) and `webhook-signature`: `v1,` and the base64 HMAC-SHA256, keyed with the secret's
bytes, of `{id}.{timestamp}.{body}`. Secrets look like `whsec_` and base64 of 32 random bytes.
While an endpoint's secret is being rotated the header carries two signatures separated by a
space, `v1,<by the new secret> v1,<by the previous one>`: a receiver accepts the delivery when
any of them verifies with the secret it holds.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """Return a fresh signing secret (`whsec_…`)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def secret_bytes(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(SECRET_PREFIX))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header value for this message."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_bytes(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def sign_all(secrets_: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """Return the `webhook-signature` header: one `v1,` signature per secret, space-separated."""
    return " ".join(sign(secret, msg_id, timestamp, body) for secret in secrets_)


def verify(secret: str, headers: dict, body: bytes, *, now: int, tolerance: int = 300) -> bool:
    """Say whether `headers` carry a valid signature of `body` made within `tolerance` seconds.

    What a receiver does (the README shows the same in a few lines): recompute, compare in
    constant time with each `v1,` signature of the space-separated list, refuse stale stamps.
    """
    lower = {k.lower(): v for k, v in headers.items()}
    try:
        msg_id, timestamp = lower["webhook-id"], int(lower["webhook-timestamp"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, msg_id, timestamp, body)
    return any(
        hmac.compare_digest(expected, candidate)
        for candidate in lower.get("webhook-signature", "").split()
    )
