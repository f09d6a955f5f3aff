"""The reason every audited change carries: one check for every service that asks for it."""

from __future__ import annotations

from django.core.exceptions import ValidationError


def required_reason(reason: str | None, missing: str) -> str:
    """Return `reason` stripped; refuse a blank one with `missing`, shown beside the field."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationError({"reason": missing})
    return reason
