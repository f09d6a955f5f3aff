"""RFC 5424 records of audit events, framed by octet counting (RFC 6587 / RFC 5425).

A record: `<PRI>1 TIMESTAMP HOSTNAME billing-access - ACTION [audit@32473 …] BOM MSG`.
- PRI: facility 13 (log audit); severity notice (5) for refusals and security events, else
  informational (6).
- The structured data `audit@32473` (32473 is the enterprise number RFC 5612 reserves for
  documentation) carries owner, chain, seq, id, hash and prev (the previous event's hash).
- MSG is the event's hashed content in the audit log's canonical JSON: its SHA-256 is `hash`,
  so a receiver recomputes each hash and each link from the records alone (`siem.verify`).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings

from audit.choices import EventCategory
from audit.hashing import canonical_json, hashed_content

SD_ID = "audit@32473"
APP_NAME = "billing-access"
FACILITY = 13  # log audit
BOM = "\ufeff"


def _sd_value(value) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("]", "\\]")


def hostname() -> str:
    host = urlsplit(getattr(settings, "PUBLIC_URL", "")).hostname or "-"
    return host[:255]


def severity(event) -> int:
    return 5 if event.category in (EventCategory.FAILED, EventCategory.SECURITY) else 6


def record(event) -> bytes:
    """Return the RFC 5424 record of one audit event, as bytes (without framing)."""
    stamp = event.occurred_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    params = {
        "owner": event.owner_id,
        "chain": event.chain,
        "seq": event.seq,
        "id": event.pk,
        "hash": event.hash,
        "prev": event.prev_hash,
    }
    sd = "[" + SD_ID + "".join(f' {k}="{_sd_value(v)}"' for k, v in params.items()) + "]"
    pri = FACILITY * 8 + severity(event)
    msgid = "".join(c for c in event.action if 33 <= ord(c) <= 126)[:32] or "-"
    header = f"<{pri}>1 {stamp} {hostname()} {APP_NAME} - {msgid} {sd} "
    return (header + BOM + canonical_json(hashed_content(event))).encode("utf-8")


def test_record(stamp) -> bytes:
    """Return a record that only says hello (the "test connection" button); no chain data."""
    text = f"<{FACILITY * 8 + 6}>1 {stamp:%Y-%m-%dT%H:%M:%S.%fZ} {hostname()} {APP_NAME} - test - "
    return (text + BOM + "Billing Access: test connection").encode("utf-8")


def frame(message: bytes) -> bytes:
    """Return `message` with its octet count in front (RFC 6587 3.4.1)."""
    return str(len(message)).encode("ascii") + b" " + message
