"""Housekeeping of the outbox, run by every worker (`manage.py deliver`) now and then.

- A task left running by a worker that died (killed, out of memory, machine lost) is handed back
  to the queue once it has run longer than the lease (DELIVERY_LEASE_SECONDS): every task here
  locks its outbox row and is harmless to run twice.
- Each kind of outbox row registers a sweep (`register`) that enqueues a task again for rows long
  past their attempt time, so that no row waits forever on a task that was lost.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from django.db import transaction
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from . import conf

log = logging.getLogger(__name__)

Sweep = Callable[[datetime.datetime], int]
_sweeps: list[Sweep] = []
# Purges of finished outbox rows older than a cutoff (`manage.py purge_outbox`), by kind.
Purge = Callable[[datetime.datetime], int]
_purges: dict[str, Purge] = {}


def register(sweep: Sweep) -> Sweep:
    """Run `sweep(now)` at each housekeeping round; it returns how many rows it enqueued."""
    if sweep not in _sweeps:
        _sweeps.append(sweep)
    return sweep


def recover_abandoned(now: datetime.datetime | None = None) -> int:
    """Put tasks running for longer than the lease back in the queue; return how many."""
    now = now or timezone.now()
    cutoff = now - datetime.timedelta(seconds=conf.lease_seconds())
    with transaction.atomic():
        stale = list(
            DBTaskResult.objects.select_for_update(skip_locked=True)
            .filter(status=TaskResultStatus.RUNNING, started_at__lt=cutoff)
            .values_list("pk", flat=True)
        )
        if stale:
            DBTaskResult.objects.filter(pk__in=stale).update(
                status=TaskResultStatus.READY, started_at=None
            )
    if stale:
        log.warning("Requeued %s task(s) abandoned by a worker.", len(stale))
    return len(stale)


def housekeep(now: datetime.datetime | None = None) -> dict[str, int]:
    """Run one round: abandoned tasks back to the queue, then every registered sweep."""
    now = now or timezone.now()
    done = {"abandoned": recover_abandoned(now)}
    for sweep in _sweeps:
        done[sweep.__qualname__] = sweep(now)
    return done


def register_purge(kind: str, purge: Purge) -> Purge:
    """Let `manage.py purge_outbox` delete `kind`'s finished rows older than a cutoff."""
    _purges[kind] = purge
    return purge


def purge_finished(before: datetime.datetime) -> dict[str, int]:
    """Delete every kind's finished outbox rows older than `before`; return the counts."""
    return {kind: purge(before) for kind, purge in _purges.items()}
