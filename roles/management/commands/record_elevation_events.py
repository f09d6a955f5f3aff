"""Record the elevations that started or ran out since the last run (schedule it every minute).

Enforcement never waits for this: the resolver counts an approved request only inside its
window. The command keeps the audit log complete, writing "Elevation activated" for requests
approved to start later once their start has passed and "Elevation expired" once their end has
passed, each exactly once, even with several copies running at the same time.
"""

from django.core.management.base import BaseCommand

from roles import elevations


class Command(BaseCommand):
    help = (
        "Write the audit events of just-in-time elevations that started or expired since the "
        "last run (activated, expired), once each."
    )

    def handle(self, *args, **options):
        done = elevations.record_transitions()
        self.stdout.write(
            f"Recorded {done.activated} activation{'s' if done.activated != 1 else ''} and "
            f"{done.expired} expir{'ies' if done.expired != 1 else 'y'}."
        )
