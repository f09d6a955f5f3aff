"""Load demo data: an owner, its settings lists, role groups, roles and users. Idempotent."""

from __future__ import annotations

import time

from django.contrib.auth.hashers import make_password
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts.models import CommissionProfile, Department, Owner, UpdateReason, User
from roles import catalog
from roles.models import Grant, Role, RoleGroup
from security.models import PasswordPolicy

DEMO_PASSWORD = "correct horse battery staple"

DEPARTMENTS = ["Finance", "Customer Support", "Operations", "Sales", "IT"]
UPDATE_REASONS = ["New starter", "Change of role", "Leaver", "Access review", "Correction"]
COMMISSION_PROFILES = ["Standard sales", "Partner channel", "Enterprise"]

ROLE_GROUPS = {
    "Administrators": ("application", "all-full"),
    "Finance": (
        "application",
        {
            "invoices": "full",
            "payments": "read",
            "billing": "read",
            "transactions": "read",
            "reports": "run",
        },
    ),
    "Customer Support": (
        "application",
        {
            "customers": "read",
            "tickets": "full",
            "notes": "full",
            "users": "read",
            "dp_data_protection_access": "full",
            "customer_contacts": "read",
        },
    ),
    "Security Review": (
        "application",
        {
            "users": "read",
            "user_activity": "read",
            "dp_user_activity": "read",
            "settings_user_groups": "read",
        },
    ),
    "Integration API": (
        "api",
        {
            "api_customers": "write",
            "api_invoices": "read",
            "api_users": "read",
            "api_authorization": "read",
        },
    ),
}
ROLES = {
    "Administrator": ["Administrators"],
    "Finance clerk": ["Finance"],
    "Support agent": ["Customer Support"],
    "Security reviewer": ["Security Review"],
    "Integration": ["Integration API"],
}
USERS = [
    # username, first, last, role, privilege, extra
    ("admin", "Alex", "Admin", "Administrator", 10, {"expert_level": 3}),
    ("support", "Sam", "Support", "Support agent", 6, {}),
    ("finance", "Fran", "Finance", "Finance clerk", 3, {"is_commission_holder": True}),
    ("auditor", "Ada", "Auditor", "Security reviewer", 6, {}),
    ("leaver", "Lee", "Leaver", "Finance clerk", 3, {"allow_login": False}),
    (
        "crm-sync",
        "CRM",
        "Sync",
        "Integration",
        1,
        {"kind": "api", "allow_login": False, "allow_api_read": True, "allow_api_write": True},
    ),
]


class Command(BaseCommand):
    help = (
        "Load the demo owner Acme Telecom (idempotent); --users N adds N bulk users for benchmarks."
    )

    def add_arguments(self, parser):
        parser.add_argument("--users", type=int, default=0, help="Add bulk users up to this many.")
        parser.add_argument(
            "--events", type=int, default=0, help="Append this many audit events (benchmarks)."
        )
        parser.add_argument("--owner", default="Acme Telecom", help="Owner to seed.")
        parser.add_argument("--quiet", action="store_true")

    def handle(self, *args, **options):
        with transaction.atomic():
            owner = self.seed_owner(options["owner"])
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

    def seed_owner(self, name: str) -> Owner:
        slug = name.lower().replace(" ", "-")
        owner, _ = Owner.objects.get_or_create(slug=slug, defaults={"name": name})
        PasswordPolicy.objects.get_or_create(owner=owner)
        for model, names in (
            (Department, DEPARTMENTS),
            (UpdateReason, UPDATE_REASONS),
            (CommissionProfile, COMMISSION_PROFILES),
        ):
            for item in names:
                model.objects.get_or_create(owner=owner, name=item)
        groups = {}
        for group_name, (kind, grants) in ROLE_GROUPS.items():
            group, created = RoleGroup.objects.get_or_create(
                owner=owner, name=group_name, defaults={"kind": kind}
            )
            groups[group_name] = group
            if created:
                if grants == "all-full":
                    grants = {a.code: a.top for a in catalog.areas_for(group.channel)}
                Grant.objects.bulk_create(
                    [Grant(role_group=group, area=a, level=lvl) for a, lvl in grants.items()]
                )
        roles = {}
        for role_name, group_names in ROLES.items():
            role, created = Role.objects.get_or_create(owner=owner, name=role_name)
            if created:
                role.role_groups.set([groups[g] for g in group_names])
            roles[role_name] = role
        password = make_password(DEMO_PASSWORD)
        departments = list(Department.objects.filter(owner=owner))
        for username, first, last, role_name, privilege, extra in USERS:
            if User.objects.filter(username__ci=username).exists():
                continue
            user = User.objects.create(
                owner=owner,
                username=username,
                email=f"{username}@acme-telecom.example",
                first_name=first,
                last_name=last,
                role=roles[role_name],
                privilege_level=privilege,
                password=password if extra.get("kind") != "api" else make_password(None),
                **extra,
            )
            user.departments.set(departments[:2])
        return owner


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
    return added
