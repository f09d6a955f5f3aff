"""Load the demo owner and its month of history (`demo.seed`); optionally bulk users and
events for benchmarks. Idempotent."""

from __future__ import annotations

import time

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand

from accounts.models import Owner, User
from demo import seed as demo
from demo.seed import DEMO_PASSWORD
from roles.models import Role


class Command(BaseCommand):
    help = (
        "Load the demo owner Acme Telecom with a month of history (idempotent); --users N adds "
        "N bulk users for benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=0, help="Add bulk users up to this many.")
        parser.add_argument(
            "--events", type=int, default=0, help="Append this many audit events (benchmarks)."
        )
        parser.add_argument("--owner", default="Acme Telecom", help="Owner to seed.")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **options):
        started = time.monotonic()
        owner, seeded = demo.seed(options["owner"])
        elapsed = time.monotonic() - started
        if seeded.story:
            self.say(
                options,
                f"Seeded {owner.name}: {seeded.people} people and a month of history "
                f"({seeded.events:,} audit events) in {elapsed:.1f}s.",
            )
        elif seeded.anything:
            self.say(options, f"Added {seeded.people + seeded.structure} demo records.")
        else:
            self.say(options, f"Demo data for {owner.name} is already loaded: nothing added.")
        if options["users"]:
            started = time.monotonic()
            added = bulk_users(owner, options["users"])
            self.say(options, f"Added {added} bulk users in {time.monotonic() - started:.1f}s.")
        if options["events"]:
            from django.core.management import call_command

            call_command("seed_events", "--events", str(options["events"]), "--owner", owner.slug)
        self.say(
            options,
            f"Demo owner {owner.name}: sign in as admin / {DEMO_PASSWORD!r} "
            f"(also support, finance, auditor with the same password).",
        )

    def say(self, options, text):
        if not options["quiet"]:
            self.stdout.write(text)


def bulk_users(owner: Owner, count: int, *, batch_size: int = 5000) -> int:
    """Add bulk users to `owner` until it has `count` of them: one hash for all, batched inserts."""
    existing = User.objects.filter(owner=owner, username__startswith=f"{owner.slug}-u").count()
    password = make_password(DEMO_PASSWORD)
    roles = list(Role.objects.filter(owner=owner).values_list("pk", flat=True)) or [None]
    first_names = ["Ana", "Ben", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jo", "Kai"]
    last_names = ["Smith", "Jones", "Patel", "Garcia", "Nguyen", "Müller", "Rossi", "Kim", "Okafor"]
    added = 0
    for start in range(existing, count, batch_size):
        batch = []
        for n in range(start, min(start + batch_size, count)):
            batch.append(
                User(
                    owner=owner,
                    username=f"{owner.slug}-u{n:06d}",
                    email=f"u{n:06d}@{owner.slug}.example",
                    first_name=first_names[n % len(first_names)],
                    last_name=f"{last_names[n % len(last_names)]}{n % 97}",
                    role_id=roles[n % len(roles)],
                    allow_login=n % 23 != 0,
                    password=password,
                )
            )
        User.objects.bulk_create(batch, batch_size=batch_size)
        added += len(batch)
    if added:
        User.objects.people_changed(owner.pk)
    return added
