"""Where to send a person next, without an open redirect."""

from __future__ import annotations

from django.conf import settings
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next(request, fallback: str | None = None) -> str:
    """Return the `next` target when it stays on this site, else `fallback` (a URL or URL name;
    LOGIN_REDIRECT_URL when not given)."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return settings.LOGIN_REDIRECT_URL if fallback is None else fallback
