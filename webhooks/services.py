"""Registering webhook endpoints: every change audited, every URL vetted (see `transport`), and
signing secrets rotated with an overlap during which both the new and the previous secret sign.
"""

from __future__ import annotations

import datetime

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.services import diff
from portal.reasons import required_reason

from . import listening, signing, transport
from .choices import EventType
from .models import WebhookEndpoint

FIELDS = ("name", "url", "event_types", "enabled")


def _snapshot(endpoint: WebhookEndpoint) -> dict:
    return {field: getattr(endpoint, field) for field in FIELDS}


def _clean(url: str, event_types) -> list[str]:
    transport.resolve(url)  # raises ValidationError for an address the portal will not call
    chosen = [t for t in EventType.values if t in set(event_types)]
    if not chosen:
        raise ValidationError({"event_types": "Choose at least one event type."})
    return chosen


def create_endpoint(
    *, actor, reason: str, name: str, url: str, event_types
) -> tuple[WebhookEndpoint, str]:
    """Register an endpoint of the actor's owner; return it and its secret (shown once)."""
    reason = required_reason(reason, "Say why the endpoint is registered.")
    chosen = _clean(url, event_types)
    secret = signing.new_secret()
    with transaction.atomic():
        endpoint = WebhookEndpoint(
            owner=actor.owner, name=name.strip(), url=url, event_types=chosen, created_by=actor
        )
        endpoint.secret = secret
        endpoint.save()
        listening.configuration_changed(endpoint.owner_id)
        audit.record(
            AuditAction.SETTINGS_ITEM_CREATED,
            actor=actor,
            target=endpoint,
            changes={f: [None, v] for f, v in _snapshot(endpoint).items()},
            details="Webhook endpoint registered",
            reason=reason,
        )
    return endpoint, secret


def update_endpoint(
    endpoint: WebhookEndpoint, *, actor, reason: str, name, url, event_types, enabled
) -> dict:
    """Change an endpoint's name, URL, types or state; enabling it clears its failure clock."""
    reason = required_reason(reason, "Say why the endpoint is changed.")
    chosen = _clean(url, event_types)
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        before = _snapshot(locked)
        locked.name, locked.url, locked.event_types = name.strip(), url, chosen
        if enabled and not locked.enabled:
            locked.disabled_reason, locked.failing_since = "", None
        elif not enabled and locked.enabled:
            locked.disabled_reason = f"Disabled by {actor.label}."
        locked.enabled = enabled
        locked.updated_at = timezone.now()
        locked.save()
        listening.configuration_changed(locked.owner_id)
        changes = diff(before, _snapshot(locked))
        if changes:
            audit.record(
                AuditAction.SETTINGS_ITEM_CHANGED,
                actor=actor,
                target=locked,
                changes=changes,
                details="Webhook endpoint changed",
                reason=reason,
            )
    return changes


def delete_endpoint(endpoint: WebhookEndpoint, *, actor, reason: str) -> None:
    """Remove an endpoint with its deliveries."""
    reason = required_reason(reason, "Say why the endpoint is removed.")
    with transaction.atomic():
        audit.record(
            AuditAction.SETTINGS_ITEM_RETIRED,
            actor=actor,
            target=endpoint,
            changes={f: [v, None] for f, v in _snapshot(endpoint).items()},
            details="Webhook endpoint removed",
            reason=reason,
        )
        endpoint.delete()
        listening.configuration_changed(endpoint.owner_id)


ROTATION_OVERLAP_HOURS = (1, 168)  # the shortest and longest overlap a rotation may have


def rotate_secret(
    endpoint: WebhookEndpoint, *, actor, reason: str, overlap_hours: int = 24
) -> tuple[WebhookEndpoint, str]:
    """Give the endpoint a new signing secret; return it with the secret (shown once).

    For `overlap_hours` the previous secret signs too (a second `v1,` signature), so the
    receiver can move to the new secret without refusing a delivery; then it is dropped (or at
    once with `finish_rotation`). Rotating during an overlap makes the current secret the
    previous one: the older one stops signing at once.
    """
    reason = required_reason(reason, "Say why the secret is rotated.")
    shortest, longest = ROTATION_OVERLAP_HOURS
    if not shortest <= overlap_hours <= longest:
        raise ValidationError({"overlap_hours": f"Choose between {shortest} and {longest} hours."})
    secret = signing.new_secret()
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        now = timezone.now()
        dropped = locked.rotating(now)
        locked.previous_secret = locked.secret
        locked.previous_secret_until = now + datetime.timedelta(hours=overlap_hours)
        locked.secret = secret
        locked.secret_rotated_at = locked.updated_at = now
        locked.save()
        audit.record(
            AuditAction.SETTINGS_ITEM_CHANGED,
            actor=actor,
            target=locked,
            changes={
                "signing": [
                    "one secret" if not dropped else "two secrets (a rotation was running)",
                    f"new secret; the previous one also signs until "
                    f"{locked.previous_secret_until:%Y-%m-%d %H:%M} UTC",
                ]
            },
            reason=reason,
            details="Webhook signing secret rotated",
        )
    return locked, secret


def finish_rotation(endpoint: WebhookEndpoint, *, actor, reason: str) -> WebhookEndpoint:
    """End a rotation's overlap now: only the new secret signs from the next delivery on."""
    reason = required_reason(reason, "Say why the rotation is finished early.")
    with transaction.atomic():
        locked = WebhookEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        now = timezone.now()
        if not locked.rotating(now):
            raise ValidationError("No rotation is running: only the current secret signs.")
        until = locked.previous_secret_until
        locked.previous_secret = ""
        locked.previous_secret_until = None
        locked.updated_at = now
        locked.save()
        audit.record(
            AuditAction.SETTINGS_ITEM_CHANGED,
            actor=actor,
            target=locked,
            changes={
                "signing": [
                    f"new and previous secret (until {until:%Y-%m-%d %H:%M} UTC)",
                    "new secret only",
                ]
            },
            reason=reason,
            details="Webhook secret rotation finished",
        )
    return locked
