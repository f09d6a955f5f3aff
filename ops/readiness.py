"""What /readyz checks: the database, the cache and the outbox worker, each cheap and bounded.

A check returns None when all is well, or a short text saying what is wrong (shown only to
callers allowed the details). A required check that fails makes the portal unavailable (503:
take it out of the balancer); another one makes it degraded (200: it serves, more slowly or
with mail waiting). Apps add their own with `register` from their AppConfig.ready.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from django.apps import apps
from django.core.cache import cache
from django.db import connection
from django.utils.crypto import get_random_string

OK, DEGRADED, UNAVAILABLE = "ok", "degraded", "unavailable"


@dataclass(frozen=True)
class Check:
    name: str
    run: Callable[[], str | None]
    required: bool


_checks: dict[str, Check] = {}


def register(name: str, run: Callable[[], str | None], *, required: bool = True) -> None:
    """Add (or replace) a readiness check; `required=False` only degrades the portal."""
    _checks[name] = Check(name, run, required)


def database() -> str | None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return None


def shared_cache() -> str | None:
    probe = get_random_string(12)
    cache.set("ops:readyz", probe, 30)
    if cache.get("ops:readyz") != probe:
        return "the cache did not keep a value"
    if getattr(cache, "is_down", False):
        return "Redis unreachable: this process's memory stands in"
    return None


def outbox_worker() -> str | None:
    """The worker's pulse, read from its work: no due task may wait longer than a lease.

    A live worker takes a due task within a second; one that waited a whole lease
    (DELIVERY_LEASE_SECONDS) means no worker runs, or all are stuck. Nothing due: nothing to say.
    """
    if not apps.is_installed("delivery"):
        return None
    from delivery import conf

    from .metrics import oldest_due_seconds

    waited = oldest_due_seconds()
    if waited > conf.lease_seconds():
        return f"the oldest due outbox task has waited {waited:.0f} s for a worker"
    return None


register("database", database)
register("cache", shared_cache, required=False)
register("worker", outbox_worker, required=False)


def run() -> tuple[str, dict[str, dict]]:
    """Run every check; return the overall status and each check's outcome and time."""
    results: dict[str, dict] = {}
    status = OK
    database_down = False
    for check in _checks.values():
        started = time.perf_counter()
        if database_down and check.name != "cache":
            problem: str | None = "not checked: the database is unavailable"
        else:
            try:
                problem = check.run()
            except Exception as exc:  # noqa: BLE001 - any failure of a check is its answer
                problem = f"{type(exc).__name__}: {str(exc).strip()[:200]}"
        results[check.name] = {
            "ok": problem is None,
            "ms": round((time.perf_counter() - started) * 1000, 1),
            **({"problem": problem} if problem else {}),
        }
        if problem is None:
            continue
        if check.name == "database":
            database_down = True
        if check.required:
            status = UNAVAILABLE
        elif status == OK:
            status = DEGRADED
    return status, results
