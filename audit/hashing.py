"""The links of the audit chains: what an event's hash covers and how it is computed.

`audit.record` hashes each event as it writes it, `audit.bulk` as it loads past history, the
verifier (`audit.segments`) recomputes the hashes, and SIEM streams carry `hashed_content` so a
receiver can check the chain from the records alone.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

GENESIS_HASH = "0" * 64

# The columns `content_hash` reads, plus what the verifier itself needs.
HASHED_FIELDS = (
    "occurred_at",
    "owner_id",
    "action",
    "actor_id",
    "actor_label",
    "target_type",
    "target_id",
    "target_label",
    "subject_user_id",
    "changes",
    "reason",
    "details",
    "context",
    "request_id",
    "ip",
    "user_agent",
    "method",
    "chain",
    "seq",
    "prev_hash",
)

_CANONICAL_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def hashed_content(event: Any) -> dict:
    """Return what an event's hash covers: its content and the previous link's hash.

    `event` is an AuditEvent or any object with the same attributes (the verifier and the bulk
    loader pass light rows rather than model instances). Streams to a SIEM carry exactly this,
    so that a receiver can recompute the chain from the streamed records alone.
    """
    return {
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


def canonical_json(content: dict) -> str:
    """Return `content` in the canonical encoding the hash covers (keys sorted, no spaces)."""
    return _CANONICAL_JSON.encode(content)


def content_hash(event: Any) -> str:
    """Return the SHA-256 of an event's content together with the previous link's hash."""
    return hashlib.sha256(canonical_json(hashed_content(event)).encode("utf-8")).hexdigest()
