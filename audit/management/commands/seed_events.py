"""Load many realistic audit events quickly, as a valid hash chain (for demos and benchmarks)."""

from __future__ import annotations

import datetime
import itertools
import queue
import random
import threading
import time
from types import SimpleNamespace

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.utils import timezone

from audit import bulk, integrity, queries
from audit.choices import AuditAction, category_of
from audit.models import AuditChainHead

A = AuditAction
WEIGHTS = {
    A.SIGN_IN: 40,
    A.SIGN_OUT: 22,
    A.SIGN_IN_FAILED: 10,
    A.SESSION_EXPIRED: 4,
    A.USER_CHANGED: 6,
    A.ROLE_CHANGED: 1.2,
    A.OVERRIDE_SET: 0.8,
    A.SETTINGS_ITEM_CHANGED: 0.8,
    A.PASSWORD_CHANGED: 2,
    A.TOTP_ENROLLED: 0.5,
    A.TOTP_FAILED: 2,
    A.BACKUP_CODE_USED: 0.3,
    A.TOKEN_CREATED: 0.4,
    A.SENSITIVE_VIEWED: 4,
    A.LOCKED_OUT: 0.6,
    A.ACCESS_REFUSED: 1.5,
}
USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
    "Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/130.0.0.0 Safari/537.36",
]
ATTACKER_AGENTS = ["python-requests/2.32.3", "curl/8.5.0", "Mozilla/5.0 (compatible)"]
OFFICE_IPS = ["10.20.0.", "10.20.1.", "192.168.50."]
HOME_PREFIXES = ["81.2.69.", "62.30.112.", "90.214.8.", "86.188.30.", "185.53.178.", "2.24.80."]
ATTACKER_IPS = ["45.155.205.", "103.151.172.", "193.32.162.", "5.188.206.", "141.98.11."]
FAILURES = [
    ("wrong_password", "Wrong password", 70),
    ("unknown_user", "No user with this login", 20),
    ("login_disabled", "User has no Login flag", 5),
    ("locked_out", "Locked out", 5),
]
REASONS = ["Access review", "Change of role", "Correction", "New starter", "Leaver"]
DEPARTMENTS = ["Finance", "Customer Support", "Operations", "Sales", "IT"]


class Command(BaseCommand):
    help = (
        "Append N realistic audit events to an owner's chain (sign-ins, failures, changes, "
        "security events, views) spread over the last --days days, as a valid hash chain. "
        "PostgreSQL loads with COPY; SQLite with batched inserts."
    )

    def add_arguments(self, parser):
        parser.add_argument("--events", type=int, default=100_000)
        parser.add_argument("--owner", help="Owner name or slug (default: the first owner).")
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--batch", type=int, default=20_000)
        parser.add_argument("--seed", type=int, default=7, help="Random seed (repeatable data).")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **options):
        owner_model = get_user_model()._meta.get_field("owner").related_model
        owners = owner_model.objects.order_by("pk")
        if options["owner"]:
            owners = owners.filter(name=options["owner"]) | owners.filter(slug=options["owner"])
        owner = owners.first()
        if owner is None:
            raise CommandError("No such owner: load demo data first (manage.py seed_demo).")
        users = list(
            get_user_model()
            .objects.filter(owner=owner)
            .order_by("pk")
            .values_list("pk", "username", "first_name", "last_name", "display_name")
        )
        if not users:
            raise CommandError(f"{owner} has no users: load demo data first.")
        people = [
            SimpleNamespace(pk=pk, username=u, label=(d or f"{f} {la}".strip() or u))
            for pk, u, f, la, d in users
        ]
        total, batch = options["events"], max(options["batch"], 1)
        generator = EventGenerator(owner.pk, people, options["days"], total, options["seed"])
        started = time.monotonic()
        written = 0
        for events in _in_background(generator, total, batch):
            self._load_batch(owner.pk, events)
            written += len(events)
            if not options["quiet"] and (written % (batch * 10) == 0 or written == total):
                elapsed = time.monotonic() - started
                self.stdout.write(
                    f"  {written:,} events, {written / elapsed:,.0f} events/s", ending="\n"
                )
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("ANALYZE audit_auditevent")
        queries.forget_daily_counts()  # past days now hold events they did not hold before
        elapsed = time.monotonic() - started
        if not integrity.triggers_installed():  # pragma: no cover - would be a bug
            raise CommandError("The append-only triggers are missing after the load.")
        if not options["quiet"]:
            self.stdout.write(
                f"Loaded {total:,} events for {owner} in {elapsed:.1f}s "
                f"({total / max(elapsed, 1e-9):,.0f} events/s); the chain is at seq "
                f"{AuditChainHead.objects.get(chain=owner.pk).seq:,}."
            )

    def _load_batch(self, chain: int, events: list) -> None:
        """Chain one batch onto the head, under its lock, so concurrent writers never fork it."""
        bulk.append(chain, events)


def _in_background(generator: EventGenerator, total: int, batch: int):
    """Yield batches of events made by a thread, so that making the next batch overlaps the
    database's work on the current one (the thread never touches the database)."""
    batches: queue.Queue = queue.Queue(maxsize=2)
    failure: list[BaseException] = []

    def produce():
        try:
            left = total
            while left > 0:
                size = min(batch, left)
                batches.put(list(generator.take(size)))
                left -= size
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer
            failure.append(exc)
        finally:
            batches.put(None)

    worker = threading.Thread(target=produce, name="seed-events", daemon=True)
    worker.start()
    while (events := batches.get()) is not None:
        yield events
    worker.join()
    if failure:
        raise failure[0]


class EventGenerator:
    """Produce events in time order with a daily rhythm, a few bursts of failed sign-ins."""

    def __init__(self, owner_id, people, days, total, seed):
        self.random = random.Random(seed)
        self.owner_id = owner_id
        self.people = people
        self.admins = people[: max(1, len(people) // 10)]
        self.now = timezone.now()
        self.start = self.now - datetime.timedelta(days=days)
        self.step = (self.now - self.start).total_seconds() / max(total, 1)
        self.index = 0
        self.actions = list(WEIGHTS)
        self.cum_weights = list(itertools.accumulate(WEIGHTS.values()))
        self.failures = [(code, label) for code, label, _ in FAILURES]
        self.failure_weights = list(itertools.accumulate(w for *_, w in FAILURES))
        self.attack_days = {self.random.randrange(days) for _ in range(max(1, days // 20))}
        self.homes = {
            p.pk: self.random.choice(HOME_PREFIXES) + str(self.random.randrange(2, 250))
            for p in people
        }

    def take(self, size):
        for _ in range(size):
            self.index += 1
            yield self.event()

    def event(self):
        r = self.random
        when = self.start + datetime.timedelta(seconds=self.index * self.step)
        day = (when - self.start).days
        action = r.choices(self.actions, cum_weights=self.cum_weights)[0]
        if day in self.attack_days and r.random() < 0.5:
            action = A.SIGN_IN_FAILED
        person = r.choice(self.people)
        event = SimpleNamespace(
            occurred_at=when,
            owner_id=self.owner_id,
            action=str(action),
            category=str(category_of(action)),
            actor_id=person.pk,
            actor_label=person.label,
            target_type="user",
            target_id=str(person.pk),
            target_label=person.label,
            subject_user_id=person.pk,
            changes={},
            reason="",
            details="",
            context={},
            request_id=f"{r.getrandbits(64):016x}",
            ip=self.ip_of(person),
            user_agent=r.choice(USER_AGENTS),
            method="",
        )
        getattr(self, f"fill_{event.action}", self.fill_other)(event, person, day)
        return event

    def ip_of(self, person):
        r = self.random
        if r.random() < 0.55:
            return r.choice(OFFICE_IPS) + str(r.randrange(2, 250))
        return self.homes[person.pk]

    def fill_sign_in(self, event, person, day):
        event.method = "saml" if self.random.random() < 0.2 else "password"
        if event.method == "password" and self.random.random() < 0.65:
            event.context = {"second_factor": self.random.choice(["totp"] * 9 + ["backup_code"])}

    def fill_sign_out(self, event, person, day):
        pass

    def fill_session_expired(self, event, person, day):
        event.details = "Idle for longer than the policy allows."

    def fill_sign_in_failed(self, event, person, day):
        r = self.random
        code, label = r.choices(self.failures, cum_weights=self.failure_weights)[0]
        attack = day in self.attack_days
        login = person.username if code != "unknown_user" else f"{person.username}{r.randrange(9)}"
        event.actor_id, event.actor_label = None, login
        event.method = "password"
        event.reason = label
        event.context = {"reason": code, "login": login}
        if attack:
            event.ip = r.choice(ATTACKER_IPS) + str(r.randrange(2, 250))
            event.user_agent = r.choice(ATTACKER_AGENTS)
        if code == "unknown_user":
            event.target_type = event.target_id = event.target_label = ""
            event.subject_user_id = None

    def fill_totp_failed(self, event, person, day):
        event.actor_id = None
        event.method = "password"
        event.reason = "Code did not match"

    def fill_locked_out(self, event, person, day):
        event.actor_id = None
        event.reason = "Too many failed attempts"
        event.context = {"failures": self.random.randrange(5, 12)}

    def fill_access_refused(self, event, person, day):
        event.details = self.random.choice(["/users/", "/roles/matrix/", "/settings/policy/"])

    def fill_user_changed(self, event, person, day):
        r = self.random
        admin = r.choice(self.admins)
        event.actor_id, event.actor_label = admin.pk, admin.label
        event.reason = r.choice(REASONS)
        field = r.choice(["privilege_level", "email", "departments", "allow_api_read", "time_zone"])
        if field == "privilege_level":
            old = r.randrange(1, 9)
            change = [old, old + 1]
        elif field == "email":
            change = [f"{person.username}@old.example", f"{person.username}@example.com"]
        elif field == "departments":
            first = r.sample(DEPARTMENTS, 1)
            change = [first, sorted({*first, r.choice(DEPARTMENTS)})]
        elif field == "allow_api_read":
            change = [False, True]
        else:
            change = ["UTC", r.choice(["Europe/London", "Europe/Berlin", "America/New_York"])]
        event.changes = {field: change}
        event.subject_user_id = person.pk

    def fill_role_changed(self, event, person, day):
        admin = self.random.choice(self.admins)
        event.actor_id, event.actor_label = admin.pk, admin.label
        event.target_type, event.target_id, event.target_label = "role", "1", "Finance clerk"
        event.changes = {"role_groups": [["Finance"], ["Finance", "Customer Support"]]}
        event.reason = "Change of role"
        event.subject_user_id = admin.pk

    def fill_override_set(self, event, person, day):
        admin = self.random.choice(self.admins)
        event.actor_id, event.actor_label = admin.pk, admin.label
        event.changes = {"invoices": ["read", "full"]}
        event.reason = "Month-end cover"

    def fill_settings_item_changed(self, event, person, day):
        admin = self.random.choice(self.admins)
        event.actor_id, event.actor_label = admin.pk, admin.label
        event.target_type, event.target_id, event.target_label = "department", "3", "Operations"
        event.changes = {"name": ["Ops", "Operations"]}
        event.subject_user_id = admin.pk

    def fill_sensitive_viewed(self, event, person, day):
        viewer = self.random.choice(self.admins)
        event.actor_id, event.actor_label = viewer.pk, viewer.label
        event.details = self.random.choice(["Security tab", "Sign-in history", "Recovery codes"])

    def fill_other(self, event, person, day):
        pass
