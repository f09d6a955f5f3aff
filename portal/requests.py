"""What a request says about its sender, read the same way by every door."""

from __future__ import annotations

from django.conf import settings


def client_ip(request) -> str | None:
    """Return the client's address, trusting only the configured number of proxies.

    With N trusted proxies, the Nth address from the right of X-Forwarded-For is the client:
    anything left of it was written by the client itself and can be forged.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    count = getattr(settings, "TRUSTED_PROXY_COUNT", 0)
    if count <= 0:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) >= count:
        return forwarded[-count]
    return remote
