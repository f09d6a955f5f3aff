"""Load history into the audit log in bulk: events with chosen times, chained like any other.

For loaders of past history only (the demo's month, benchmark volumes), never for a change made
now: a change and its event are written together by `audit.record`. An event built here is
normalised exactly as `record` normalises one (cleansed values, canonical addresses, copied
labels), so `audit_verify` recomputes the same hash from the stored row.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterable, Sequence
from types import SimpleNamespace
from typing import Any

from django.db import connection, transaction

from . import hashing, services
from .choices import category_of
from .models import AuditChainHead, AuditEvent

# What the event table stores of each event: the hashed content, its category and its hash.
COLUMNS = ("category", *hashing.HASHED_FIELDS, "hash")


def event(
    action: str,
    *,
    occurred_at: datetime.datetime,
    owner_id: int,
    actor: Any = None,
    actor_label: str = "",
    target: Any = None,
    subject_user: Any = None,
    changes: dict | None = None,
    reason: Any = None,
    details: str = "",
    context: dict | None = None,
    ip: str | None = None,
    user_agent: str = "",
    method: str = "",
    request_id: str = "",
) -> SimpleNamespace:
    """Return one unchained event of `owner_id`'s log, as `audit.record` would have written it.

    `occurred_at` must be timezone-aware. `actor`, `target` and `subject_user` take what
    `record` takes (a model instance, a (type, id, label) tuple for a target); the subject
    defaults to a user target, else the actor.
    """
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware.")
    target_type, target_id, target_label = services._describe(target)
    if subject_user is None:
        subject_user = target if target_type == "user" else actor
    return SimpleNamespace(
        occurred_at=occurred_at.astimezone(datetime.UTC),
        owner_id=owner_id,
        action=str(action),
        category=str(category_of(action)),
        actor_id=getattr(actor, "pk", None),
        actor_label=services._text(actor.label if actor is not None else actor_label)[:300],
        target_type=target_type,
        target_id=services._text(target_id)[:64],
        target_label=services._text(target_label)[:300],
        subject_user_id=getattr(subject_user, "pk", subject_user),
        changes=services.cleanse(changes or {}),
        reason=services._text(reason)[:300],
        details=services._text(details),
        context=services.cleanse(context or {}),
        request_id=services._text(request_id)[:64],
        ip=services._ip(ip),
        user_agent=services._text(user_agent)[:400],
        method=services._text(method)[:40],
    )


def append(chain: int, events: Sequence[Any]) -> int:
    """Chain `events` (in the order given) onto `chain`'s head under its lock and insert them.

    Each event is any object with the attributes of `COLUMNS` but the four chain ones, which
    are set here; the head moves to the last of them, so writers after this one link on.
    Return how many were written.
    """
    if not events:
        return 0
    with transaction.atomic():
        AuditChainHead.objects.bulk_create([AuditChainHead(chain=chain)], ignore_conflicts=True)
        head = AuditChainHead.objects.select_for_update().get(chain=chain)
        seq, last_hash = head.seq, head.last_hash
        for item in events:
            seq += 1
            item.chain, item.seq, item.prev_hash = chain, seq, last_hash
            item.hash = last_hash = hashing.content_hash(item)
        insert(events)
        AuditChainHead.objects.filter(chain=chain).update(seq=seq, last_hash=last_hash)
    return len(events)


def insert(rows: Iterable[Any]) -> None:
    """Insert chained events as they are (COPY on PostgreSQL, batched INSERTs elsewhere)."""

    def values(item):
        return tuple(
            json.dumps(getattr(item, c)) if c in ("changes", "context") else getattr(item, c)
            for c in COLUMNS
        )

    table = AuditEvent._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for item in rows:
                    copy.write_row(values(item))
        else:
            marks = ", ".join(["%s"] * len(COLUMNS))
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({marks})",  # noqa: S608
                [values(item) for item in rows],
            )
