"""Write audit events: `record` is the only writer of the audit table."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import re
from typing import Any

from django.db import transaction
from django.utils import timezone

from . import context as request_context
from .choices import AuditAction, category_of
from .models import AuditChainHead, AuditEvent

GENESIS_HASH = "0" * 64
REDACTED = "[redacted]"
_SECRET_KEY_PATTERN = re.compile(
    r"pass(word)?|secret|token|otp|totp|(^|_)code(s)?$|key$|signature|private|credential",
    re.IGNORECASE,
)


def cleanse(value: Any, *, key: str = "") -> Any:
    """Return `value` with every secret-looking entry replaced by a marker, recursively."""
    if key and _SECRET_KEY_PATTERN.search(key):
        return REDACTED
    if isinstance(value, dict):
        return {str(k): cleanse(v, key=str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [cleanse(v, key=key) for v in value]
    return _jsonable(value)


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if hasattr(value, "pk") and hasattr(value, "_meta"):
        return str(value)
    return str(value)


def _describe(obj: Any) -> tuple[str, str, str]:
    """Return (type, id, label) of a target: a model instance, or a (type, id, label) tuple."""
    if obj is None:
        return "", "", ""
    if isinstance(obj, tuple):
        kind, ident, label = obj
        return str(kind), str(ident), str(label)[:300]
    label = getattr(obj, "label", None) or str(obj)
    return obj._meta.model_name, str(obj.pk), str(label)[:300]


def content_hash(event: AuditEvent) -> str:
    """Return the SHA-256 of an event's content together with the previous link's hash."""
    payload = {
        "occurred_at": event.occurred_at.isoformat(),
        "owner_id": event.owner_id,
        "action": event.action,
        "actor_id": event.actor_id,
        "actor_label": event.actor_label,
        "target_type": event.target_type,
        "target_id": event.target_id,
        "target_label": event.target_label,
        "subject_user_id": event.subject_user_id,
        "changes": event.changes,
        "reason": event.reason,
        "details": event.details,
        "context": event.context,
        "request_id": event.request_id,
        "ip": event.ip,
        "user_agent": event.user_agent,
        "method": event.method,
        "chain": event.chain,
        "seq": event.seq,
        "prev_hash": event.prev_hash,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(encoded.encode("utf-8")).hexdigest()


def _lock_head(chain: int) -> AuditChainHead:
    AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
    return AuditChainHead.objects.select_for_update().get(chain=chain)


def record(
    action: str,
    *,
    actor: Any = None,
    target: Any = None,
    owner: Any = None,
    subject_user: Any = None,
    changes: dict | None = None,
    reason: Any = None,
    details: str = "",
    context: dict | None = None,
    method: str = "",
    request: Any = None,
    actor_label: str = "",
) -> AuditEvent:
    """Append one event to the audit log, inside the caller's transaction.

    `actor` is the user who acted (None for the system or an anonymous visitor, in which case
    `actor_label` says who it was, such as the login typed on the sign-in page). `target` is the
    record acted on; `subject_user` the user the event concerns when that is not the target
    (defaults to the target when it is a user, else the actor). `changes` is `{field: [before,
    after]}`. Secrets in `changes` and `context` are cleansed before anything is written.
    """
    if action not in AuditAction.values:
        raise ValueError(f"Unknown audit action {action!r}.")
    facts = request_context.current()
    if request is not None and getattr(request, "audit_facts", None) is not None:
        facts = request.audit_facts
    target_type, target_id, target_label = _describe(target)
    if owner is None:
        owner = getattr(target, "owner", None) or getattr(actor, "owner", None)
        if owner is None and target is not None and target_type == "owner":
            owner = target
    owner_id = owner if isinstance(owner, int) else getattr(owner, "pk", None)
    if subject_user is None:
        if target_type == "user":
            subject_user = target
        elif actor is not None:
            subject_user = actor
    subject_user_id = getattr(subject_user, "pk", subject_user)

    event = AuditEvent(
        occurred_at=timezone.now(),
        owner_id=owner_id,
        action=action,
        category=category_of(action),
        actor_id=getattr(actor, "pk", None),
        actor_label=(getattr(actor, "label", "") if actor is not None else actor_label)[:300],
        target_type=target_type,
        target_id=target_id,
        target_label=target_label,
        subject_user_id=subject_user_id,
        changes=cleanse(changes or {}),
        reason=str(reason or "")[:300],
        details=details or "",
        context=cleanse(context or {}),
        request_id=facts.request_id[:64],
        ip=facts.ip,
        user_agent=facts.user_agent[:400],
        method=method,
        chain=owner_id or 0,
    )
    with transaction.atomic():
        head = _lock_head(event.chain)
        event.seq = head.seq + 1
        event.prev_hash = head.last_hash
        event.hash = content_hash(event)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(chain=head.chain).update(seq=event.seq, last_hash=event.hash)
    return event


def diff(before: dict, after: dict) -> dict:
    """Return `{field: [before, after]}` for the fields whose values differ."""
    changes = {}
    for field in sorted(set(before) | set(after)):
        old, new = before.get(field), after.get(field)
        if old != new:
            changes[field] = [_jsonable_deep(old), _jsonable_deep(new)]
    return changes


def _jsonable_deep(value: Any) -> Any:
    if isinstance(value, list | tuple | set | frozenset):
        return sorted(_jsonable(v) for v in value)
    return _jsonable(value)
