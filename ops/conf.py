"""Tunables of the operations endpoints, read from the settings when used (never at import)."""

from __future__ import annotations

import ipaddress

from django.conf import settings

# Paths the operations middleware answers itself, before sessions, authentication and the rest.
HEALTHZ = "/healthz"
READYZ = "/readyz"
METRICS = "/metrics"


def metrics_token() -> str:
    return getattr(settings, "METRICS_TOKEN", "") or ""


def metrics_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """The networks allowed to read the metrics and readiness details without the token."""
    return [
        ipaddress.ip_network(network, strict=False)
        for network in getattr(settings, "METRICS_ALLOWED_NETWORKS", [])
    ]
