"""The CSRF token of every page's forms, masked with one read of the system's random source.

Django masks the secret of the CSRF cookie afresh for each token it hands out (so that the page
never repeats a secret under compression, BREACH), drawing the 32 mask characters one system call
at a time. `masked_token` draws the whole mask from one `os.urandom` read instead: every byte
below 248 (four times the 62 allowed characters) gives one character, the others are dropped, so
each character stays equally likely; the shift is a few operations on bytes, not a loop. The
token has Django's form (mask, then the secret shifted by the mask) and is checked by Django's
`CsrfViewMiddleware` as any other.

The `csrf` context processor (listed after Django's built-in one, whose key it replaces) gives
templates this token for `{% csrf_token %}`.
"""

from __future__ import annotations

import os

from django.conf import settings
from django.middleware import csrf as django_csrf
from django.utils.safestring import SafeString

CHARS = django_csrf.CSRF_ALLOWED_CHARS
SECRET_LENGTH = django_csrf.CSRF_SECRET_LENGTH
_ALLOWED = frozenset(CHARS)
_BYTE_LIMIT = 256 - 256 % len(CHARS)
# Random bytes become mask indexes by one translate: byte b is index b % 62, bytes of 248 and
# above are dropped.
_BYTE_TO_INDEX = bytes(byte % len(CHARS) for byte in range(256))
_DROPPED = bytes(range(_BYTE_LIMIT, 256))
_CHAR_TO_INDEX = bytes(CHARS.find(chr(byte)) % 256 for byte in range(256))
# An index, or the sum of two (0 to 122), to its character: taken modulo 62.
_TO_CHAR = bytes(ord(CHARS[value % len(CHARS)]) for value in range(256))


def _mask() -> bytes:
    """Return SECRET_LENGTH indexes into CHARS, each equally likely."""
    mask = b""
    while len(mask) < SECRET_LENGTH:
        mask += os.urandom(48).translate(_BYTE_TO_INDEX, _DROPPED)
    return mask[:SECRET_LENGTH]


def mask_secret(secret: str) -> str:
    """Return a token for `secret` (SECRET_LENGTH characters of CHARS, as `masked_token`
    checks): a fresh mask, then the secret shifted by it.

    Each secret character moves along CHARS by its mask character's index. The indexes of both
    are bytes below 62, so adding the two strings of bytes as big numbers adds them position by
    position (no sum reaches 256, so nothing carries), and one translate takes each sum modulo
    62 back to a character.
    """
    mask = _mask()
    secret_indexes = secret.encode("ascii").translate(_CHAR_TO_INDEX)
    sums = int.from_bytes(secret_indexes) + int.from_bytes(mask)
    shifted = sums.to_bytes(SECRET_LENGTH).translate(_TO_CHAR)
    return (mask.translate(_TO_CHAR) + shifted).decode("ascii")


def masked_token(request) -> str:
    """Return a CSRF token for a form of this request, as `django.middleware.csrf.get_token`.

    A request without a valid cookie gets a new secret (and cookie) from Django. A cookie with an
    expiry (CSRF_COOKIE_AGE) is renewed by the response, Django's rule for a used token; the
    portal's cookie has none (it ends with the browser session), so it is not sent again.
    """
    secret = request.META.get("CSRF_COOKIE")
    if (
        not isinstance(secret, str)
        or len(secret) != SECRET_LENGTH
        or not _ALLOWED.issuperset(secret)
    ):
        return django_csrf.get_token(request)
    if settings.CSRF_COOKIE_AGE is not None:
        request.META["CSRF_COOKIE_NEEDS_UPDATE"] = True
    return mask_secret(secret)


class LazyToken:
    """The token of a page, drawn when its template first uses it (`{% csrf_token %}`).

    A plain object rather than `SimpleLazyObject`, whose proxying costs more than the token.
    """

    __slots__ = ("_request", "_token")

    def __init__(self, request) -> None:
        self._request = request
        self._token: str | None = None

    def __str__(self) -> str:
        if self._token is None:
            self._token = masked_token(self._request)
        return self._token

    def __html__(self) -> SafeString:
        return SafeString(str(self))  # letters and digits only: nothing to escape

    def __bool__(self) -> bool:
        return True

    def __eq__(self, other) -> bool:
        return str(self) == other

    __hash__ = None  # type: ignore[assignment]


def csrf(request) -> dict:
    """Template context: `csrf_token`, worked out only when a template uses it."""
    return {"csrf_token": LazyToken(request)}
