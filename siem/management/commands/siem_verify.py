"""`manage.py siem_verify FILE…`: verify audit chains from streamed syslog records alone."""

from django.core.management.base import BaseCommand, CommandError

from siem import verify


class Command(BaseCommand):
    help = (
        "Check the hash chain of audit records received over syslog (RFC 5424 lines, as the "
        "portal streams them) without the database: every hash, every link, no gap."
    )

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="+", help="Files of received records, one a line.")

    def handle(self, *args, files, **options):
        def lines():
            for path in files:
                try:
                    with open(path, encoding="utf-8") as handle:
                        yield from handle
                except OSError as exc:
                    raise CommandError(f"Cannot read {path}: {exc}") from exc

        result = verify.verify_lines(lines())
        for line in verify.report(result):
            self.stdout.write(line)
        if not result.ok:
            raise CommandError("The streamed chain does not verify.", returncode=1)
