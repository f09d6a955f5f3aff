"""Delete audit events older than each owner's retention period; each purge is itself recorded."""

from __future__ import annotations

from django.core.management.base import BaseCommand

from audit import services


class Command(BaseCommand):
    help = (
        "Delete audit events older than each owner's audit_retention_days (and owner-less events "
        "older than AUDIT_UNOWNED_RETENTION_DAYS), recording an 'Audit log purged' event per "
        "chain. Run it daily."
    )

    def handle(self, *args, **options):
        results = services.purge_expired()
        for result in results:
            self.stdout.write(
                f"Chain {result.chain}: deleted {result.deleted:,} events older than "
                f"{result.cutoff:%Y-%m-%d %H:%M} UTC ({result.retention_days} days); "
                f"the chain now starts at seq {result.first_kept_seq}."
            )
        if not results and options["verbosity"]:
            self.stdout.write("Nothing is older than its retention period.")
