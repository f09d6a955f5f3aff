"""Running the outbox's tasks: in-process (`run_due`, for tests and benchmarks) and as the worker
command (`manage.py deliver`, django-tasks-db's worker plus the housekeeping of `sweeps`)."""

from __future__ import annotations

import logging
import threading

from django.db import close_old_connections, connection
from django.tasks import DEFAULT_TASK_BACKEND_ALIAS
from django.utils.crypto import get_random_string
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction

from . import conf, sweeps

log = logging.getLogger(__name__)


def run_due(*, max_tasks: int | None = None, worker_id: str = "") -> int:
    """Run the tasks that are due now, one after the other, in this process; return how many.

    The claim and the run are django-tasks-db's (its `get_locked`, `claim` and the worker's
    `run_task`), without the worker loop's connection recycling, so that tests and benchmarks can
    call it on their own connection (inside a test's transaction, too).
    """
    runner = Worker(
        queue_names=["*"],
        interval=0,
        batch=True,
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=False,
        max_tasks=max_tasks,
        worker_id=worker_id or f"inline-{get_random_string(8)}",
        excluded_queue_names=[],
    )
    done = 0
    while max_tasks is None or done < max_tasks:
        tasks = DBTaskResult.objects.ready().filter(backend_name=runner.backend_name)
        with exclusive_transaction(tasks.db):
            task = tasks.get_locked()
            if task is None:
                break
            task.claim(runner.worker_id)
        runner.run_task(task)
        done += 1
    return done


class Housekeeper(threading.Thread):
    """Run `sweeps.housekeep` at start and then every quarter lease, beside the worker loop."""

    def __init__(self):
        super().__init__(name="outbox-housekeeping", daemon=True)
        self.stopped = threading.Event()

    def run(self) -> None:
        every = max(1.0, conf.lease_seconds() / 4)
        try:
            while True:
                try:
                    done = sweeps.housekeep()
                    if any(done.values()):
                        log.info("Outbox housekeeping: %s", done)
                except Exception:
                    log.exception("Outbox housekeeping failed; trying again later.")
                finally:
                    close_old_connections()
                if self.stopped.wait(every):
                    return
        finally:
            connection.close()
