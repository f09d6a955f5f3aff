"""System checks: the outbox only holds its promise with the database task backend."""

from __future__ import annotations

from django.conf import settings
from django.core import checks
from django.db import router

DATABASE_BACKEND = "django_tasks_db.DatabaseBackend"


@checks.register(checks.Tags.database)
def check_task_backend(app_configs, **kwargs):
    """Refuse a task backend that would not write its task in the change's own transaction.

    The database backend inserts the task on the caller's connection as soon as `enqueue` is
    called (it never defers it to `on_commit`), so the task commits or rolls back with the change,
    provided its table lives in the same database as the rest.
    """
    errors = []
    backend = getattr(settings, "TASKS", {}).get("default", {}).get("BACKEND", "")
    if backend != DATABASE_BACKEND:
        errors.append(
            checks.Error(
                f"TASKS['default'] must use {DATABASE_BACKEND} (it is {backend or 'unset'}).",
                hint="The outbox needs its tasks written in the same transaction as the change.",
                id="delivery.E001",
            )
        )
    else:
        from django_tasks_db.models import DBTaskResult

        from .models import OutboundEmail

        if router.db_for_write(DBTaskResult) != router.db_for_write(OutboundEmail):
            errors.append(
                checks.Error(
                    "The task table is routed to another database than the outbox.",
                    hint="Route django_tasks_db to the database of the portal's own models.",
                    id="delivery.E002",
                )
            )
    return errors
