"""Posting to a receiver without letting it reach inside: vetted addresses, short timeouts.

A webhook URL is resolved when it is saved and again at each delivery, and every address it
resolves to must be public: private (10/8, 172.16/12, 192.168/16, fc00::/7), loopback, link-local
(169.254/16, fe80::/10, where cloud metadata services answer), multicast, reserved and
unspecified addresses are refused, unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on (tests, and
receivers inside a private network on purpose). The connection goes to the address that was
checked (no second lookup that a rebinding DNS server could answer differently); HTTPS still
verifies the certificate for the URL's host name. Receivers that hang meet the connect and read
timeouts; redirects are not followed.
"""

from __future__ import annotations

import http.client
import ipaddress
import socket
import ssl
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError

MAX_RESPONSE_BYTES = 64 * 1024


def allow_private() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False))


def timeouts() -> tuple[float, float]:
    """Return the (connect, read) timeouts in seconds."""
    return (
        float(getattr(settings, "WEBHOOK_CONNECT_TIMEOUT", 3)),
        float(getattr(settings, "WEBHOOK_READ_TIMEOUT", 10)),
    )


def is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def resolve(url: str) -> tuple[str, int, str, str]:
    """Return (scheme, port, host, address) of `url`, refusing what must not be called."""
    parts = urlsplit(url)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValidationError("Give an http:// or https:// address.")
    if parts.username or parts.password:
        raise ValidationError("Put no user name or password in the address; the secret signs.")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise ValidationError("The port is not a number between 1 and 65535.") from exc
    try:
        found = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(f"{parts.hostname} cannot be resolved.") from exc
    addresses = [str(info[4][0]) for info in found]
    if not allow_private():
        refused = [a for a in addresses if not is_public(a)]
        if refused:
            raise ValidationError(
                f"{parts.hostname} resolves to {refused[0]}, a private, loopback or link-local "
                "address: the portal only calls public addresses."
            )
    return parts.scheme, port, parts.hostname, addresses[0]


@dataclass(frozen=True)
class Answer:
    status: int | None
    error: str = ""


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host, port, address, *, connect_timeout, read_timeout):
        super().__init__(host, port, timeout=connect_timeout)
        self._address, self._read_timeout = address, read_timeout

    def connect(self):
        self.sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock.settimeout(self._read_timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host, port, address, *, connect_timeout, read_timeout):
        super().__init__(host, port, timeout=connect_timeout, context=ssl.create_default_context())
        self._address, self._read_timeout = address, read_timeout

    def connect(self):
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)
        self.sock.settimeout(self._read_timeout)


def post(url: str, body: bytes, headers: dict[str, str]) -> Answer:
    """POST `body` to `url`; return the status code, or the reason there was none."""
    try:
        scheme, port, host, address = resolve(url)
    except ValidationError as exc:
        return Answer(None, exc.messages[0])
    connect_timeout, read_timeout = timeouts()
    kind = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = kind(host, port, address, connect_timeout=connect_timeout, read_timeout=read_timeout)
    parts = urlsplit(url)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        response.read(MAX_RESPONSE_BYTES)
        return Answer(response.status)
    except TimeoutError:
        return Answer(None, "The receiver did not answer in time.")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(None, f"{type(exc).__name__}: {exc}"[:300])
    finally:
        conn.close()
