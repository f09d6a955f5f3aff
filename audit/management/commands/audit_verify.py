"""Check the audit log's hash chains and append-only triggers; exit non-zero on any break."""

from __future__ import annotations

import os

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Sum

from audit import integrity
from audit.models import AuditChainHead


class Command(BaseCommand):
    help = (
        "Walk every audit chain recomputing each event's hash; report the first broken link of "
        "each chain (edited, removed or reordered events) and exit with status 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=10_000, help="Rows fetched per round trip."
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=0,
            help="Processes checking segments in parallel (PostgreSQL); 0: one per CPU, at "
            "most 4, when the log is large enough to gain from it.",
        )
        parser.add_argument(
            "--segment-size", type=int, default=250_000, help="Events per parallel segment."
        )

    def handle(self, *args, **options):
        verbosity = options["verbosity"]

        def progress(count):
            if verbosity > 1:
                self.stderr.write(f"  … {count:,} events checked")

        workers = options["workers"]
        if workers <= 0:
            total = AuditChainHead.objects.aggregate(total=Sum("seq"))["total"] or 0
            workers = min(os.cpu_count() or 1, 4) if total > 2 * options["segment_size"] else 1
        report = integrity.verify(
            chunk_size=options["chunk_size"],
            progress=progress,
            workers=workers,
            segment_size=options["segment_size"],
        )
        if verbosity:
            self.stdout.write(
                f"Checked {report.events:,} events in {report.chains} chains "
                f"in {report.seconds:.1f}s ({report.rate:,.0f} events/s, "
                f"{workers} worker{'s' if workers > 1 else ''})."
            )
        if not report.triggers_ok:
            self.stderr.write(
                "The append-only triggers are missing or disabled on audit_auditevent: "
                "run `manage.py migrate audit` (or re-enable the trigger)."
            )
        for item in report.breaks:
            self.stderr.write(f"BROKEN {item}")
        if not report.ok:
            raise CommandError("The audit log failed verification.", returncode=1)
        if verbosity:
            self.stdout.write(self.style.SUCCESS("Every chain is intact."))
