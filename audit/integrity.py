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
import itertools
import multiprocessing
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from django.db import connection as default_connection
from django.db.models import Max, Min

from . import verify_worker
from .models import AuditChainHead, AuditEvent
from .segments import Break, Segment, SegmentResult, span, walk_segment


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


def verify(
    *,
    chunk_size: int = 10_000,
    max_breaks: int = 100,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    segment_size: int = 250_000,
) -> Report:
    """Walk every chain in seq order, recomputing each event's hash and checking each link.

    Rows stream through a server-side cursor (`iterator(chunk_size=…)`) as plain tuples, so the
    memory used does not grow with the size of the log. Chains are cut into segments of
    `segment_size` events; with `workers` > 1 (PostgreSQL) the segments are checked by that
    many processes and stitched together by their boundary links, which proves the same thing
    as one walk. Only the first break of each chain is reported, with a missing start (removed
    oldest events that no purge accounts for) and a head ahead of the last event (removed
    newest events).
    """
    report = Report(triggers_ok=triggers_installed())
    started = time.monotonic()
    heads = {h.chain: h for h in AuditChainHead.objects.all()}
    spans = (
        AuditEvent.objects.values("chain")
        .annotate(lo=Min("seq"), hi=Max("seq"))
        .order_by("chain")
        .values_list("chain", "lo", "hi")
    )
    segments = [
        Segment(chain, start, min(start + segment_size - 1, hi))
        for chain, lo, hi in spans
        for start in range(lo, hi + 1, segment_size)
    ]
    results: list[SegmentResult] = []
    if workers > 1 and len(segments) > 1 and default_connection.vendor == "postgresql":
        # Fresh processes ("spawn", not "fork"): a forked child could inherit the parent's open
        # database socket. They connect to the database this process uses (under tests, the
        # test database, whose name is only known at run time).
        context = multiprocessing.get_context("spawn")
        database = default_connection.settings_dict["NAME"]
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=context,
            initializer=verify_worker.start,
            initargs=(database,),
        ) as pool:
            for result in pool.map(
                verify_worker.walk,
                [s.chain for s in segments],
                [s.lo for s in segments],
                [s.hi for s in segments],
                itertools.repeat(chunk_size),
            ):
                results.append(result)
                report.events += result.count
                if progress is not None:
                    progress(report.events)
    else:
        for segment in segments:
            result = walk_segment(segment, chunk_size)
            results.append(result)
            report.events += result.count
            if progress is not None:
                progress(report.events)

    breaks: list[Break] = []
    seen: set[int] = set()
    for chain, chain_results in itertools.groupby(results, key=lambda r: r.chain):
        seen.add(chain)
        breaks.extend(_stitch(chain, [r for r in chain_results if r.count], heads.get(chain)))
    for chain, head in heads.items():
        if chain not in seen and head.seq > 0:
            breaks.append(
                Break(chain, None, None, f"every event is missing (the head is at seq {head.seq})")
            )
    report.breaks = breaks[:max_breaks]
    report.chains = len(seen | set(heads))
    report.seconds = time.monotonic() - started
    return report


def _stitch(chain: int, parts: list[SegmentResult], head: AuditChainHead | None) -> list[Break]:
    """Join a chain's checked segments: boundary links, its start, its head."""
    problems: list[Break] = []
    if not parts:  # its events vanished while it was being checked
        return [Break(chain, None, None, "its events disappeared during the check")]
    walk_breaks = [p.first_break for p in parts if p.first_break is not None]
    for before, after in itertools.pairwise(parts):
        if after.first_seq != before.last_seq + 1:
            walk_breaks.append(
                Break(
                    chain,
                    after.first_seq,
                    after.first_id,
                    f"events missing before it (seq {span(before.last_seq, after.first_seq)})",
                )
            )
        elif after.first_prev != before.last_hash:
            walk_breaks.append(
                Break(
                    chain,
                    after.first_seq,
                    after.first_id,
                    "link broken: its prev_hash is not the hash of the event before it",
                )
            )
    if walk_breaks:
        problems.append(min(walk_breaks, key=lambda b: b.seq or 0))
    first, last = parts[0], parts[-1]
    vouches = [p.vouch for p in parts if p.vouch is not None]
    vouched = max(vouches)[1:] if vouches else None
    if first.first_seq > 1 and vouched != (first.first_seq, first.first_prev):
        problems.append(
            Break(
                chain,
                first.first_seq,
                None,
                f"events before seq {first.first_seq} are missing and no purge accounts for them",
            )
        )
    if head is None:
        problems.append(Break(chain, None, None, "the chain has no head record"))
    elif head.seq != last.last_seq or head.last_hash != last.last_hash:
        problems.append(
            Break(
                chain,
                head.seq,
                None,
                f"the newest events are missing: the head is at seq {head.seq}, "
                f"the last event at seq {last.last_seq}",
            )
        )
    return problems
