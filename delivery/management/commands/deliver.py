"""`manage.py deliver`: the outbox worker (email, webhooks, SIEM streams)."""

from __future__ import annotations

import os

from django.utils.autoreload import DJANGO_AUTORELOAD_ENV
from django_tasks_db.management.commands.db_worker import Command as DbWorkerCommand

from delivery.worker import Housekeeper


class Command(DbWorkerCommand):
    help = (
        "Deliver the outbox: run the queued tasks (django-tasks-db's db_worker, every queue) and "
        "hand back tasks that a dead worker left running. Run one or more beside the web servers."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        # Every queue, and a short poll: a change reaches its webhook within about a second.
        parser.set_defaults(queue_name="*", interval=0.25)

    def handle(self, *args, **options):
        reloading = options.get("reload") and not options.get("batch")
        if not reloading or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true":
            Housekeeper().start()
        return super().handle(*args, **options)
