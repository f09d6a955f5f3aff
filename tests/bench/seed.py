"""Seed the benchmark database: owners of 10k and 100k users, 50 full role groups, events."""

from __future__ import annotations

import random
import time

from django.contrib.auth.hashers import make_password
from django.core.management import call_command, get_commands
from django.db import transaction

from accounts.models import Owner, User
from roles import catalog
from roles.models import Grant, Role, RoleGroup
from security.models import PasswordPolicy

BENCH_PASSWORD = "bench passphrase for everyone"
GROUPS_PER_OWNER = 50
ROLES_PER_OWNER = 10


def owner_for(size: int) -> Owner:
    slug = f"bench-{size}"
    owner, _ = Owner.objects.get_or_create(slug=slug, defaults={"name": f"Bench {size:,} users"})
    PasswordPolicy.objects.get_or_create(owner=owner)
    return owner


@transaction.atomic
def seed_model(owner: Owner) -> None:
    """Create 50 role groups with a level on every area, and 10 roles of 5 groups each."""
    if RoleGroup.objects.filter(owner=owner).count() >= GROUPS_PER_OWNER:
        return
    rng = random.Random(owner.pk)
    areas = catalog.areas_for(catalog.Channel.APPLICATION)
    groups = RoleGroup.objects.bulk_create(
        [RoleGroup(owner=owner, name=f"Group {n:02d}") for n in range(GROUPS_PER_OWNER)]
    )
    grants = [
        Grant(role_group=group, area=area.code, level=rng.choice(area.levels[1:]))
        for group in groups
        for area in areas
    ]
    Grant.objects.bulk_create(grants, batch_size=5000)
    for n in range(ROLES_PER_OWNER):
        role = Role.objects.create(owner=owner, name=f"Role {n:02d}")
        role.role_groups.set(groups[n * 5 : n * 5 + 5])


def seed_users(owner: Owner, count: int, *, batch_size: int = 5000) -> float:
    """Add users until the owner has `count`; return seconds spent."""
    started = time.monotonic()
    existing = User.objects.filter(owner=owner).count()
    if existing >= count:
        return 0.0
    password = make_password(BENCH_PASSWORD)
    roles = list(Role.objects.filter(owner=owner).values_list("pk", flat=True))
    first = ["Ana", "Ben", "Chen", "Dara", "Eli", "Femi", "Gus", "Hana", "Ivo", "Jo", "Kai", "Lia"]
    last = ["Smith", "Jones", "Patel", "Garcia", "Nguyen", "Müller", "Rossi", "Kim", "Okafor"]
    for start in range(existing, count, batch_size):
        User.objects.bulk_create(
            [
                User(
                    owner=owner,
                    username=f"{owner.slug}-{n:06d}",
                    email=f"user{n:06d}@{owner.slug}.example",
                    first_name=first[n % len(first)],
                    last_name=f"{last[n % len(last)]}-{n % 1000:03d}",
                    role_id=roles[n % len(roles)],
                    allow_login=n % 29 != 0,
                    privilege_level=n % 8,
                    password=password,
                )
                for n in range(start, min(start + batch_size, count))
            ],
            batch_size=batch_size,
        )
    return time.monotonic() - started


def bench_admin(owner: Owner) -> User:
    """Return the owner's benchmark administrator (a platform administrator, for the admin)."""
    user = User.objects.filter(username=f"{owner.slug}-admin").first()
    if user is None:
        user = User.objects.create_superuser(
            f"{owner.slug}-admin", f"admin@{owner.slug}.example", BENCH_PASSWORD, owner=owner
        )
    return user


def user_with_groups(owner: Owner, count: int) -> User:
    """Return a user of the owner reaching exactly `count` role groups (extra groups, no role)."""
    username = f"{owner.slug}-groups-{count}"
    user = User.objects.filter(username=username).first()
    if user is None:
        user = User.objects.create_user(
            username, f"{username}@{owner.slug}.example", BENCH_PASSWORD, owner=owner
        )
        user.extra_role_groups.set(RoleGroup.objects.filter(owner=owner).order_by("pk")[:count])
    return User.objects.select_related("owner").get(pk=user.pk)


def seed_events(owner: Owner, count: int) -> tuple[float, str]:
    """Load audit events through the audit app's seeding command when it exists."""
    if count <= 0:
        return 0.0, "skipped (BENCH_EVENTS=0)"
    if "seed_events" not in get_commands():
        return 0.0, "skipped: no seed_events command yet"
    from audit.models import AuditEvent

    existing = AuditEvent.objects.filter(owner_id=owner.pk).count()
    if existing >= count:
        return 0.0, f"{existing:,} present"
    started = time.monotonic()
    call_command("seed_events", "--events", str(count - existing), "--owner", owner.slug)
    return time.monotonic() - started, f"{count:,} loaded"


def first_group(owner: Owner) -> int:
    return RoleGroup.objects.filter(owner=owner).order_by("pk").values_list("pk", flat=True).first()
