"""Integrity of the audit log: the append-only triggers and the verification of the hash chains.

Two independent defences:

- the database refuses UPDATE and DELETE on the event table (migration 0003), except inside a
  retention purge, which raises a transaction-local permit (`purge_permit`);
- every event carries the hash of its content and of the previous event of its chain, so
  `verify()` finds an edited row (its hash no longer matches its content), a removed row (a gap
  in `seq`, or a `prev_hash` that no longer matches), removed newest rows (the chain head is
  ahead of the last event) and removed oldest rows that no purge accounts for.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import SimpleNamespace

from django.db import connection as default_connection

from .choices import AuditAction
from .models import AuditChainHead, AuditEvent

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
_ROW_FIELDS = ("id", *HASHED_FIELDS, "hash")


@contextlib.contextmanager
def purge_permit(connection=None) -> Iterator[None]:
    """Let the delete trigger accept DELETEs on the audit table for the rest of this block.

    Must run inside `transaction.atomic()`: the permit is transaction-local, so it cannot leak
    past the purge's transaction even if the block fails half-way.
    """
    connection = connection or default_connection
    if not connection.in_atomic_block:
        raise RuntimeError("A purge permit is only given inside a transaction.")
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            cursor.execute("SET LOCAL audit.allow_purge = 'on'")
        elif vendor == "sqlite":
            cursor.execute("UPDATE audit_purge_permit SET allowed = 1 WHERE id = 1")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if vendor == "postgresql":
                cursor.execute("SET LOCAL audit.allow_purge = 'off'")
            elif vendor == "sqlite":
                cursor.execute("UPDATE audit_purge_permit SET allowed = 0 WHERE id = 1")


def triggers_installed(connection=None) -> bool:
    """Say whether the append-only triggers are in place on the audit table."""
    connection = connection or default_connection
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'audit_auditevent'::regclass "
                "AND tgname = 'audit_event_append_only' AND tgenabled <> 'D'"
            )
            return cursor.fetchone()[0] == 1
        if connection.vendor == "sqlite":
            cursor.execute(
                "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN "
                "('audit_event_refuse_update', 'audit_event_refuse_delete')"
            )
            return cursor.fetchone()[0] == 2
    return False


@dataclass(frozen=True)
class Break:
    """One broken link: where, and what is wrong."""

    chain: int
    seq: int | None
    event_id: int | None
    problem: str

    def __str__(self) -> str:
        where = f"chain {self.chain}"
        if self.seq is not None:
            where += f", seq {self.seq}"
        if self.event_id is not None:
            where += f" (event {self.event_id})"
        return f"{where}: {self.problem}"


@dataclass
class Report:
    chains: int = 0
    events: int = 0
    seconds: float = 0.0
    breaks: list[Break] = field(default_factory=list)
    triggers_ok: bool = True

    @property
    def ok(self) -> bool:
        return not self.breaks and self.triggers_ok

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


@dataclass
class _Walk:
    """The state of one chain while its events stream by."""

    chain: int
    first_seq: int
    first_prev: str
    last_seq: int
    last_hash: str
    vouched: tuple[int, str] | None = None
    broken: bool = False


def verify(
    *,
    chunk_size: int = 10_000,
    max_breaks: int = 100,
    progress: Callable[[int], None] | None = None,
) -> Report:
    """Walk every chain in (chain, seq) order, recomputing each event's hash.

    Rows stream through a server-side cursor (`iterator(chunk_size=…)`) as plain tuples, so the
    memory used does not grow with the size of the log. Only the first break of each chain is
    reported: after it, everything that follows is suspect anyway.
    """
    from .services import content_hash  # services imports this module

    report = Report(triggers_ok=triggers_installed())
    started = time.monotonic()
    heads = {h.chain: h for h in AuditChainHead.objects.all()}
    seen: set[int] = set()
    walk: _Walk | None = None

    def add(chain, seq, event_id, problem):
        if len(report.breaks) < max_breaks:
            report.breaks.append(Break(chain, seq, event_id, problem))

    rows = (
        AuditEvent.objects.order_by("chain", "seq")
        .values_list(*_ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )
    for values in rows:
        row = SimpleNamespace(**dict(zip(_ROW_FIELDS, values, strict=True)))
        report.events += 1
        if progress is not None and report.events % 100_000 == 0:
            progress(report.events)
        if walk is None or row.chain != walk.chain:
            if walk is not None:
                _finish(walk, heads.get(walk.chain), add)
            seen.add(row.chain)
            walk = _Walk(row.chain, row.seq, row.prev_hash, row.seq - 1, row.prev_hash)
            if row.seq == 1 and row.prev_hash != GENESIS_HASH:
                add(row.chain, row.seq, row.id, "the first event does not start from genesis")
                walk.broken = True
        elif not walk.broken:
            if row.seq != walk.last_seq + 1:
                missing = f"{walk.last_seq + 1}" + (
                    f"-{row.seq - 1}" if row.seq - 1 > walk.last_seq + 1 else ""
                )
                add(row.chain, row.seq, row.id, f"events missing before it (seq {missing})")
                walk.broken = True
            elif row.prev_hash != walk.last_hash:
                add(
                    row.chain,
                    row.seq,
                    row.id,
                    "link broken: its prev_hash is not the hash of the event before it",
                )
                walk.broken = True
        if not walk.broken and content_hash(row) != row.hash:
            add(row.chain, row.seq, row.id, "content changed: the stored hash does not match")
            walk.broken = True
        if row.action == AuditAction.AUDIT_PURGED:
            context = row.context or {}
            walk.vouched = (context.get("first_kept_seq"), context.get("first_kept_prev_hash"))
        walk.last_seq, walk.last_hash = row.seq, row.hash
    if walk is not None:
        _finish(walk, heads.get(walk.chain), add)
    for chain, head in heads.items():
        if chain not in seen and head.seq > 0:
            add(chain, None, None, f"every event is missing (the chain head is at seq {head.seq})")
    report.chains = len(seen | set(heads))
    report.seconds = time.monotonic() - started
    return report


def _finish(walk: _Walk, head: AuditChainHead | None, add) -> None:
    if walk.first_seq > 1 and walk.vouched != (walk.first_seq, walk.first_prev):
        add(
            walk.chain,
            walk.first_seq,
            None,
            f"events before seq {walk.first_seq} are missing and no purge accounts for them",
        )
    if head is None:
        add(walk.chain, None, None, "the chain has no head record")
    elif head.seq != walk.last_seq or head.last_hash != walk.last_hash:
        add(
            walk.chain,
            head.seq,
            None,
            f"the newest events are missing: the head is at seq {head.seq}, "
            f"the last event at seq {walk.last_seq}",
        )
