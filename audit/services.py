"""Write audit events: `record` is the only writer of the audit table."""

from __future__ import annotations

import datetime
import decimal
import ipaddress
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from . import context as request_context
from . import integrity
from .choices import AuditAction, category_of
from .hashing import content_hash
from .models import AuditChainHead, AuditEvent

# The canonical encoding the hash covers (keys sorted, no spaces, UTF-8); one shared encoder
# saves building one per event when millions are verified or loaded.
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


def _text(value: Any) -> str:
    """Return `value` as text PostgreSQL accepts: NUL characters (typed by anyone) are dropped."""
    return str(value or "").replace("\x00", "")


def _ip(value: Any) -> str | None:
    """Return the address in its canonical form, or None when it is not an IP address.

    The canonical form is what the database gives back, so the hash computed at write time
    matches the one `audit_verify` recomputes from the stored row.
    """
    if not value:
        return None
    try:
        address = ipaddress.ip_address(str(value).strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return str(address.ipv4_mapped)
    return str(address)


def _jsonable(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if value is None or isinstance(value, bool | int | float):
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


# Called with each event right after it is written, inside the same transaction: apps that carry
# events elsewhere (webhooks, SIEM streams) register here from their AppConfig.ready, so that this
# app imports none of them and an event is never delivered without its change, nor the reverse.
# Entries: (callback, listener name or None for "every event").
_after_record: list[tuple[Callable[..., None], str | None]] = []


def on_record(callback: Callable[..., None], *, listener: str | None = None) -> Callable[..., None]:
    """Call `callback` after every event is written, in the writer's transaction.

    Without `listener`, `callback(event)` runs for every event. With a `listener` name, it runs
    as `callback(event, stamp)` only for the events of chains (owners) that `set_listening`
    turned on for that name, `stamp` being the chain's `listeners_stamp` (a subscriber may
    cache its per-owner configuration under it). Both facts come from the chain head that
    `record` locks anyway: an owner that streams nothing pays no query for it.

    A callback that raises undoes the event and the change with it, so it should only write
    rows (an outbox entry, a task), never reach the network.
    """
    entry = (callback, listener)
    if entry not in _after_record:
        _after_record.append(entry)
    return callback


def set_listening(owner: Any, listener: str, listening: bool) -> None:
    """Say whether `listener` wants the events of `owner`'s chain, and change the chain's stamp.

    The one writer of `AuditChainHead.listeners`: the services that configure a subscriber
    (webhook endpoints, the SIEM stream) call it in the transaction of every change of that
    configuration, so the next event (which waits for the head's lock) sees the change.
    """
    chain = owner if isinstance(owner, int) else owner.pk
    with transaction.atomic():
        head = _lock_head(chain)
        names = set(head.listeners)
        if listening:
            names.add(listener)
        else:
            names.discard(listener)
        # A random stamp, not a counter: it never comes back to an earlier value, even for a
        # chain whose head row was deleted and made again.
        AuditChainHead.objects.filter(chain=chain).update(
            listeners=sorted(names), listeners_stamp=secrets.randbits(62)
        )


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
        owner_id=owner_id,
        action=action,
        category=category_of(action),
        actor_id=getattr(actor, "pk", None),
        actor_label=_text(getattr(actor, "label", "") if actor is not None else actor_label)[:300],
        target_type=target_type,
        target_id=_text(target_id)[:64],
        target_label=_text(target_label)[:300],
        subject_user_id=subject_user_id,
        changes=cleanse(changes or {}),
        reason=_text(reason)[:300],
        details=_text(details),
        context=cleanse(context or {}),
        request_id=_text(facts.request_id)[:64],
        ip=_ip(facts.ip),
        user_agent=_text(facts.user_agent)[:400],
        method=_text(method)[:40],
        chain=owner_id or 0,
    )
    with transaction.atomic():
        head = _lock_head(event.chain)
        # The time is taken under the chain's lock, so that seq order is also time order.
        event.occurred_at = timezone.now()
        event.seq = head.seq + 1
        event.prev_hash = head.last_hash
        event.hash = content_hash(event)
        event.save(force_insert=True)
        AuditChainHead.objects.filter(chain=head.chain).update(seq=event.seq, last_hash=event.hash)
        for callback, listener in _after_record:
            if listener is None:
                callback(event)
            elif listener in head.listeners:
                callback(event, head.listeners_stamp)
    return event


def record_view(actor: Any, target: Any, what: str, *, context: dict | None = None) -> AuditEvent:
    """Record that `actor` looked at a sensitive record (`what` says which part of it).

    Screens that show personal or security data of someone (a user's security tab, their
    sign-in history) call this while serving the page: looking is evidence too.
    """
    with transaction.atomic():
        return record(
            AuditAction.SENSITIVE_VIEWED,
            actor=actor,
            target=target,
            details=what,
            context=context,
        )


def record_export(actor: Any, *, filters: dict, scope: str) -> AuditEvent:
    """Record that `actor` exported the activity log with these filters (before streaming it)."""
    with transaction.atomic():
        return record(
            AuditAction.AUDIT_EXPORTED,
            actor=actor,
            target=("audit_log", "", "Activity log"),
            details=f"CSV export ({scope})",
            context={"filters": filters, "scope": scope},
        )


@dataclass(frozen=True)
class PurgeResult:
    chain: int
    deleted: int
    cutoff: datetime.datetime
    retention_days: int
    first_kept_seq: int
    event: AuditEvent


def retention_by_chain() -> list[tuple[int, int]]:
    """Return (chain, retention days) for every owner, plus the chain of owner-less events.

    The owner model is reached through the user model's `owner` field, so that this app
    imports no other app of the portal.
    """
    owner_model = apps.get_model(settings.AUTH_USER_MODEL)._meta.get_field("owner").related_model
    rows = list(owner_model.objects.order_by("pk").values_list("pk", "audit_retention_days"))
    unowned = getattr(settings, "AUDIT_UNOWNED_RETENTION_DAYS", 2555)
    return [(0, unowned), *rows]


def purge_expired(*, now: datetime.datetime | None = None) -> list[PurgeResult]:
    """Delete each chain's events older than its owner's retention period and record each purge.

    Only a prefix of a chain is ever removed (everything before the first event that is still
    within the retention period), so the chain stays contiguous; the AUDIT_PURGED event records
    where it was cut and the hash it was cut at, from which `audit_verify` checks the first
    remaining event.
    """
    now = now or timezone.now()
    results = []
    for chain, days in retention_by_chain():
        result = _purge_chain(chain, now - datetime.timedelta(days=days), days)
        if result is not None:
            results.append(result)
    return results


def _purge_chain(chain: int, cutoff: datetime.datetime, days: int) -> PurgeResult | None:
    with transaction.atomic():
        head = AuditChainHead.objects.select_for_update().filter(chain=chain).first()
        if head is None:
            return None
        events = AuditEvent.objects.filter(chain=chain)
        first_kept = (
            events.filter(occurred_at__gte=cutoff).order_by("seq").values_list("seq", flat=True)
        ).first()
        if first_kept is None:
            first_kept, first_prev = head.seq + 1, head.last_hash  # the purge event itself
        else:
            first_prev = events.filter(seq=first_kept).values_list("prev_hash", flat=True).get()
        doomed = events.filter(seq__lt=first_kept)
        if not doomed.exists():
            return None
        with integrity.purge_permit():
            deleted, _ = doomed.delete()
        event = record(
            AuditAction.AUDIT_PURGED,
            owner=chain or None,
            actor_label="Retention purge",
            details=f"Deleted {deleted} events older than {days} days.",
            context={
                "deleted": deleted,
                "cutoff": cutoff.isoformat(),
                "retention_days": days,
                "first_kept_seq": first_kept,
                "first_kept_prev_hash": first_prev,
            },
        )
    return PurgeResult(chain, deleted, cutoff, days, first_kept, event)


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
