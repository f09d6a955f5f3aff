"""Change events, produced from the one door every change goes through: the audit log.

`on_audit_event` runs inside `audit.record`'s transaction. It maps the event's action to event
types (`TYPES`), adds `permissions.changed` when the change can move the user's access (with the
user's new `permissions_version`), and writes a message and one delivery per subscribed endpoint,
each with its task: all in the change's transaction, nothing sent from here.

It is registered as the audit listener `webhooks`, so it runs only for owners with an enabled
endpoint: every change of an owner's endpoints calls `configuration_changed` in its transaction,
which turns the listener on or off and changes the owner's stamp. The enabled endpoints and
their types are cached per process under (owner, stamp), so an event of an owner with
endpoints costs no lookup either, once the process has seen the stamp.
"""

from __future__ import annotations

import json
import secrets

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from accounts.users import PERMISSION_FIELDS
from audit.choices import AuditAction
from audit.hashing import hashed_content

from . import deliveries
from .choices import TEST_EVENT, EventType
from .listening import enabled_endpoints
from .models import WebhookDelivery, WebhookEndpoint, WebhookMessage

A = AuditAction
TYPES: dict[str, tuple[str, ...]] = {
    A.USER_CREATED: (EventType.USER_CREATED,),
    A.USER_CHANGED: (EventType.USER_CHANGED,),
    A.USER_DEACTIVATED: (EventType.USER_DEACTIVATED, EventType.PERMISSIONS_CHANGED),
    A.USER_REACTIVATED: (EventType.USER_REACTIVATED, EventType.PERMISSIONS_CHANGED),
    A.USER_DELETED: (EventType.USER_DELETED,),
    A.OVERRIDE_SET: (EventType.PERMISSIONS_CHANGED,),
    A.OVERRIDE_REMOVED: (EventType.PERMISSIONS_CHANGED,),
    A.SESSIONS_ENDED: (EventType.SESSIONS_ENDED,),
    A.PASSWORD_CHANGED: (EventType.PASSWORD_CHANGED,),
    A.PASSWORD_SET: (EventType.PASSWORD_CHANGED,),
    A.TOTP_ENROLLED: (EventType.AUTHENTICATORS_CHANGED,),
    A.TOTP_REMOVED: (EventType.AUTHENTICATORS_CHANGED,),
    A.TOTP_RESET: (EventType.AUTHENTICATORS_CHANGED,),
    A.BACKUP_CODES_REGENERATED: (EventType.AUTHENTICATORS_CHANGED,),
    A.ELEVATION_ACTIVATED: (EventType.ELEVATION_STARTED, EventType.PERMISSIONS_CHANGED),
    A.BREAK_GLASS: (EventType.ELEVATION_STARTED, EventType.PERMISSIONS_CHANGED),
    A.ELEVATION_ENDED: (EventType.ELEVATION_ENDED, EventType.PERMISSIONS_CHANGED),
    A.ELEVATION_REVOKED: (EventType.ELEVATION_ENDED, EventType.PERMISSIONS_CHANGED),
    A.ELEVATION_EXPIRED: (EventType.ELEVATION_ENDED, EventType.PERMISSIONS_CHANGED),
    A.ROLE_CREATED: (EventType.ROLE_CHANGED,),
    A.ROLE_CHANGED: (EventType.ROLE_CHANGED,),
    A.ROLE_DELETED: (EventType.ROLE_CHANGED,),
    A.ROLE_GROUP_CREATED: (EventType.ROLE_GROUP_CHANGED,),
    A.ROLE_GROUP_CHANGED: (EventType.ROLE_GROUP_CHANGED,),
    A.ROLE_GROUP_DELETED: (EventType.ROLE_GROUP_CHANGED,),
    A.MATRIX_CHANGED: (EventType.ROLE_GROUP_CHANGED,),
    A.ROLE_MODEL_IMPORTED: (EventType.ROLE_CHANGED, EventType.ROLE_GROUP_CHANGED),
}
# Changes that move everyone's access at once (the owner's authz_epoch moved): subscribers
# read the owner's epoch in the payload and refresh what they cached.
OWNER_WIDE = {EventType.ROLE_CHANGED, EventType.ROLE_GROUP_CHANGED}


def types_of(event) -> list[str]:
    """Return the event types an audit event stands for."""
    types = list(TYPES.get(event.action, ()))
    if (
        event.action in (A.USER_CREATED, A.USER_CHANGED)
        and PERMISSION_FIELDS & set(event.changes or {})
        and EventType.PERMISSIONS_CHANGED not in types
    ):
        types.append(EventType.PERMISSIONS_CHANGED)
    types.append(EventType.AUDIT_RECORDED)
    return types


def new_msg_id() -> str:
    """Return a message id: time-ordered (milliseconds) then random, as `msg_…`."""
    millis = int(timezone.now().timestamp() * 1000)
    return f"msg_{millis:012x}{secrets.token_hex(10)}"


def on_audit_event(event, stamp: int) -> None:
    """Write the webhook messages and deliveries an audit event calls for (same transaction)."""
    if event.owner_id is None:
        return
    endpoints = enabled_endpoints(event.owner_id, stamp)
    if not endpoints:
        return
    for event_type in types_of(event):
        wanting = [pk for pk, types in endpoints if event_type in types]
        if wanting:
            data = _data(event, event_type)
            message = _message(event.owner_id, event_type, data, audit_event_id=event.pk)
            _deliver(message, wanting)


def send_test_event(endpoint: WebhookEndpoint, *, actor) -> WebhookDelivery:
    """Queue a `webhook.test` message to this endpoint alone (whatever types it wants)."""
    with transaction.atomic():
        data = {
            "owner": {"id": endpoint.owner_id},
            "endpoint": {"id": endpoint.pk, "name": endpoint.name},
            "actor": {"id": actor.pk, "label": actor.label},
            "note": "A test event sent from the portal's webhook screen.",
        }
        message = _message(endpoint.owner_id, TEST_EVENT, data)
        (delivery,) = _deliver(message, [endpoint.pk])
    return delivery


def send_again(delivery: WebhookDelivery) -> WebhookDelivery:
    """Queue the same message (same id, same body) to the same endpoint once more."""
    with transaction.atomic():
        (again,) = _deliver(delivery.message, [delivery.endpoint_id])
    return again


def _message(owner_id: int, event_type: str, data: dict, *, audit_event_id=None):
    now = timezone.now()
    body = json.dumps(
        {"type": event_type, "timestamp": now.isoformat(), "data": data},
        separators=(",", ":"),
        ensure_ascii=False,
        sort_keys=True,
    )
    return WebhookMessage.objects.create(
        msg_id=new_msg_id(),
        owner_id=owner_id,
        event_type=event_type,
        body=body,
        audit_event_id=audit_event_id,
        created_at=now,
    )


def _deliver(message: WebhookMessage, endpoint_ids) -> list[WebhookDelivery]:
    rows = WebhookDelivery.objects.bulk_create(
        [WebhookDelivery(message=message, endpoint_id=pk) for pk in endpoint_ids]
    )
    for row in rows:
        deliveries.deliver_webhook.enqueue(row.pk)
    return rows


def _data(event, event_type: str) -> dict:
    data: dict = {
        "owner": {"id": event.owner_id},
        "audit_event": {
            "id": event.pk,
            "action": event.action,
            "occurred_at": event.occurred_at.isoformat(),
            "chain": event.chain,
            "seq": event.seq,
            "hash": event.hash,
        },
        "actor": {"id": event.actor_id, "label": event.actor_label},
        "target": {"type": event.target_type, "id": event.target_id, "label": event.target_label},
    }
    if event.subject_user_id is not None:
        data["user"] = {"id": event.subject_user_id}
    if event_type == EventType.AUDIT_RECORDED:
        data["evidence"] = hashed_content(event) | {"hash": event.hash}
        return data
    data["changes"] = event.changes
    data["reason"] = event.reason
    if event_type == EventType.PERMISSIONS_CHANGED and event.subject_user_id is not None:
        version = (
            get_user_model()
            .objects.filter(pk=event.subject_user_id)
            .values_list("permissions_version", flat=True)
            .first()
        )
        data["user"]["permissions_version"] = version
    if event_type in OWNER_WIDE:
        owner_model = apps.get_model("accounts", "Owner")
        data["owner"]["authz_epoch"] = (
            owner_model.objects.filter(pk=event.owner_id)
            .values_list("authz_epoch", flat=True)
            .first()
        )
    return data
