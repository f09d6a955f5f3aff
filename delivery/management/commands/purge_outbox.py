"""`manage.py purge_outbox [--days 90]`: delete finished outbox rows past their usefulness."""

import datetime

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from delivery import sweeps


class Command(BaseCommand):
    help = (
        "Delete emails sent or given up, and webhook messages whose deliveries are all finished, "
        "older than --days (default 90). Pending rows are never touched; the audit log keeps "
        "the evidence. Finished task rows go with django-tasks-db's prune_db_task_results."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=90)

    def handle(self, *args, days: int, **options):
        if days < 1:
            raise CommandError("--days must be at least 1.")
        counts = sweeps.purge_finished(timezone.now() - datetime.timedelta(days=days))
        for kind, count in counts.items():
            self.stdout.write(f"{kind}: {count} deleted")
