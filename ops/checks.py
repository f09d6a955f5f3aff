"""System checks: the metrics' allowed networks must parse, and a metrics token be long enough."""

from __future__ import annotations

from django.core import checks

from . import conf


@checks.register()
def check_metrics_access(app_configs, **kwargs):
    errors = []
    try:
        conf.metrics_networks()
    except ValueError as exc:
        errors.append(
            checks.Error(
                f"METRICS_ALLOWED_NETWORKS holds a value that is not a network: {exc}.",
                hint="Comma-separated addresses or CIDR networks, e.g. 10.0.0.0/8,127.0.0.1.",
                id="ops.E001",
            )
        )
    token = conf.metrics_token()
    if token and len(token) < 24:
        errors.append(
            checks.Error(
                "METRICS_TOKEN is shorter than 24 characters.",
                hint='Generate one: python -c "import secrets; print(secrets.token_urlsafe(32))"',
                id="ops.E002",
            )
        )
    return errors
