"""Benchmark of the access screens at 100k users: p50/p95 of the matrix editor for a group with
every area set, "who has access", the impact preview of a widely held group, and the lists.

Run against a dedicated database (seeded once, kept for the next run):
    TEST_DB_NAME=billing_access_bench bin/with-postgres .venv/bin/python -m tests.bench.roles
"""

from __future__ import annotations

import os
import random
import statistics
import time

USERS = int(os.environ.get("BENCH_USERS", "100000"))
RUNS = int(os.environ.get("BENCH_RUNS", "9"))


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import OperationalError, connection
    from django.test.utils import setup_test_environment

    try:
        connection.ensure_connection()
    except OperationalError:
        # The dedicated benchmark database does not exist yet: create it once.
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{connection.settings_dict["NAME"]}"')
    call_command("migrate", verbosity=0)
    setup_test_environment()


def _seed():
    from django.db import connection

    from accounts.models import Owner, User
    from roles import catalog
    from roles.models import Grant, PermissionOverride, Role, RoleGroup

    owner = Owner.objects.filter(slug="bench-roles").first()
    if owner is not None:
        return owner
    rng = random.Random(1)
    owner = Owner.objects.create(name="Bench roles", slug="bench-roles")
    areas = catalog.areas_for(catalog.Channel.APPLICATION)
    groups = [RoleGroup.objects.create(owner=owner, name=f"Group {n}") for n in range(20)]
    Grant.objects.bulk_create(
        [
            Grant(role_group=g, area=a.code, level=rng.choice(a.levels[1:]))
            for g in groups
            for a in rng.sample(areas, 30)
        ]
    )
    every = RoleGroup.objects.create(owner=owner, name="Every area")
    Grant.objects.bulk_create([Grant(role_group=every, area=a.code, level=a.top) for a in areas])
    roles = []
    for n in range(10):
        role = Role.objects.create(owner=owner, name=f"Role {n}")
        role.role_groups.set(rng.sample(groups, 3))
        roles.append(role)
    admin_role = Role.objects.create(owner=owner, name="Administrator")
    admin_role.role_groups.set([every])
    User.objects.create_user(
        "bench-admin",
        "bench-admin@example.test",
        "x",
        owner=owner,
        role=admin_role,
        privilege_level=10,
    )
    User.objects.bulk_create(
        [
            User(
                owner=owner,
                username=f"bench{n}",
                email=f"bench{n}@example.test",
                password="!",
                role=rng.choice(roles),
                privilege_level=rng.randint(0, 10),
                last_name=f"Person {n:06d}",
            )
            for n in range(USERS)
        ],
        batch_size=5000,
    )
    ids = list(User.objects.filter(owner=owner).values_list("pk", flat=True))
    through = User.extra_role_groups.through
    through.objects.bulk_create(
        [
            through(user_id=u, rolegroup_id=rng.choice(groups).pk)
            for u in rng.sample(ids, USERS // 20)
        ],
        batch_size=5000,
    )
    PermissionOverride.objects.bulk_create(
        [
            PermissionOverride(
                user_id=u, area="invoices", level=rng.choice(["none", "read", "full"]), reason="b"
            )
            for u in rng.sample(ids, USERS // 50)
        ],
        batch_size=5000,
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return owner


def _measure(label: str, call) -> None:
    call()  # warm
    times = []
    for _ in range(RUNS):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    print(f"{label:<58} p50 {statistics.median(times):7.0f} ms   p95 {p95:7.0f} ms")


def main() -> None:
    _setup()
    from django.test import Client

    from accounts.models import User
    from roles import services
    from roles.models import RoleGroup

    owner = _seed()
    admin = User.objects.get(username="bench-admin")
    client = Client()
    client.force_login(admin, backend="accounts.backends.PortalBackend")
    every = RoleGroup.objects.get(owner=owner, name="Every area")
    held = RoleGroup.objects.filter(owner=owner, roles__isnull=False).exclude(pk=every.pk).first()
    users = User.objects.filter(owner=owner).count()
    print(f"Access screens, {users} users of one owner, {RUNS} runs each")

    def get(url):
        def call():
            assert client.get(url).status_code == 200

        return call

    _measure("Matrix editor, group with every area set", get(f"/access/role-groups/{every.pk}/"))
    _measure(
        "Who has access: invoices >= read, first page",
        get("/access/who-has-access/?area=invoices&level=read"),
    )
    _measure(
        "Who has access: data-protection area, page 20",
        get("/access/who-has-access/?area=dp_user_activity&level=read&page=20"),
    )
    _measure(
        f"Impact preview: two cells of {held.name}",
        lambda: services.impact_preview(
            owner, grants={held.pk: {"invoices": "full", "payments": "none"}}
        ),
    )
    _measure("Role list", get("/access/roles/"))
    _measure("Role group list", get("/access/role-groups/"))


if __name__ == "__main__":
    main()
