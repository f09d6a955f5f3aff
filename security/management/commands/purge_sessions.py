"""Delete expired sessions and old session records; schedule it daily beside audit_purge."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from security import services


class Command(BaseCommand):
    help = (
        "Delete sessions past their expiry (as clearsessions does) and the records of sessions "
        "not seen for --days days (default 90; the 'sessions' lists of people and "
        "administrators show what is kept). Run it daily."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=90,
            help="Keep the records of sessions seen in this many days (at least 1).",
        )

    def handle(self, *args, **options):
        try:
            result = services.purge_sessions(days=options["days"])
        except ValueError as error:
            raise CommandError(str(error)) from error
        self.stdout.write(
            f"Deleted {result.expired_sessions:,} expired sessions and {result.records:,} "
            f"session records not seen since {result.cutoff:%Y-%m-%d %H:%M} UTC."
        )
