"""One run of a chain's events checked in one go, in the verifying process or a worker of it.

`audit.integrity.verify` splits each chain into segments, has them walked (in parallel through
`audit.verify_worker` on large logs) and stitches the results together.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from .choices import AuditAction
from .hashing import GENESIS_HASH, HASHED_FIELDS, content_hash
from .models import AuditEvent

_ROW_FIELDS = ("id", *HASHED_FIELDS, "hash")


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


@dataclass(frozen=True)
class Segment:
    """A run of one chain's events, [lo, hi] by seq, that one worker checks."""

    chain: int
    lo: int
    hi: int


@dataclass
class SegmentResult:
    chain: int
    count: int = 0
    first_id: int | None = None
    first_seq: int = 0
    first_prev: str = ""
    last_seq: int = 0
    last_hash: str = ""
    vouch: tuple[int, int, str] | None = None  # (purge event's seq, first kept seq, its prev)
    first_break: Break | None = None


def walk_segment(segment: Segment, chunk_size: int) -> SegmentResult:
    """Check one segment: every hash, and every link inside it."""
    result = SegmentResult(segment.chain)
    rows = (
        AuditEvent.objects.filter(chain=segment.chain, seq__gte=segment.lo, seq__lte=segment.hi)
        .order_by("seq")
        .values_list(*_ROW_FIELDS)
        .iterator(chunk_size=chunk_size)
    )

    def broken(row, problem):
        if result.first_break is None:
            result.first_break = Break(row.chain, row.seq, row.id, problem)

    for values in rows:
        row = SimpleNamespace(**dict(zip(_ROW_FIELDS, values, strict=True)))
        if result.count == 0:
            result.first_id, result.first_seq, result.first_prev = row.id, row.seq, row.prev_hash
            if row.seq == 1 and row.prev_hash != GENESIS_HASH:
                broken(row, "the first event does not start from genesis")
        elif result.first_break is None:
            if row.seq != result.last_seq + 1:
                broken(row, f"events missing before it (seq {span(result.last_seq, row.seq)})")
            elif row.prev_hash != result.last_hash:
                broken(row, "link broken: its prev_hash is not the hash of the event before it")
        if result.first_break is None and content_hash(row) != row.hash:
            broken(row, "content changed: the stored hash does not match")
        if row.action == AuditAction.AUDIT_PURGED:
            context = row.context or {}
            result.vouch = (
                row.seq,
                context.get("first_kept_seq"),
                context.get("first_kept_prev_hash"),
            )
        result.count += 1
        result.last_seq, result.last_hash = row.seq, row.hash
    return result


def span(last_seq: int, seq: int) -> str:
    missing = last_seq + 1
    return f"{missing}" if seq - 1 == missing else f"{missing}-{seq - 1}"
