"""Check the audit log's hash chains and append-only triggers; exit non-zero on any break."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit import integrity


class Command(BaseCommand):
    help = (
        "Walk every audit chain recomputing each event's hash; report the first broken link of "
        "each chain (edited, removed or reordered events) and exit with status 1 if any."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--chunk-size", type=int, default=10_000, help="Rows fetched per round trip."
        )

    def handle(self, *args, **options):
        verbosity = options["verbosity"]

        def progress(count):
            if verbosity > 1:
                self.stderr.write(f"  … {count:,} events checked")

        report = integrity.verify(chunk_size=options["chunk_size"], progress=progress)
        if verbosity:
            self.stdout.write(
                f"Checked {report.events:,} events in {report.chains} chains "
                f"in {report.seconds:.1f}s ({report.rate:,.0f} events/s)."
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
