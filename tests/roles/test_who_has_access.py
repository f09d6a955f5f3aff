"""Who has access: the SQL answer equals resolving every user, and it stays a fixed query count."""

import datetime
import random

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from roles import catalog, permissions
from roles.reports import explain_access, who_has_access
from tests.builders import make_override, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db

AREAS = ["invoices", "reports", "users", "dp_user_activity", "api_customers", "api_invoices"]


def resolve_all(owner):
    return {
        channel: {
            u.username: permissions.compute(u, channel)
            for u in User.objects.select_related("owner").filter(owner=owner)
        }
        for channel in catalog.Channel.ALL
    }


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_matches_the_resolver_for_random_worlds(owner, seed):
    rng = random.Random(seed)
    now = timezone.now()
    app = [
        make_role_group(
            owner, grants={a: rng.choice(catalog.get(a).levels) for a in rng.sample(AREAS[:4], 2)}
        )
        for _ in range(4)
    ]
    api = [
        make_role_group(
            owner,
            kind="api",
            grants={a: rng.choice(catalog.get(a).levels) for a in AREAS[4:]},
        )
        for _ in range(2)
    ]
    roles = [make_role(owner, groups=rng.sample(app + api, 2)) for _ in range(3)]
    for n in range(30):
        user = make_user(
            owner,
            username=f"w{seed}-{n}",
            role=rng.choice([*roles, None]),
            privilege_level=rng.choice([1, 5, 8]),
            allow_login=rng.random() > 0.15,
            allow_api_read=rng.random() > 0.5,
            allow_api_write=rng.random() > 0.6,
            kind=rng.choice(["interactive"] * 4 + ["api"]),
            is_superuser=rng.random() < 0.05,
        )
        user.extra_role_groups.set(rng.sample(app + api, rng.choice([0, 0, 1, 2])))
        for area in rng.sample(AREAS, rng.choice([0, 0, 1, 2])):
            expired = rng.random() < 0.3
            make_override(
                user,
                area,
                rng.choice(catalog.get(area).levels),
                expires_at=(now - datetime.timedelta(hours=1)) if expired else None,
            )
    everyone = resolve_all(owner)
    for code in AREAS:
        area = catalog.get(code)
        for level in area.levels[1:]:
            found = {u.username for u in who_has_access(owner, code, level)}
            expected = {
                name
                for name, effective in everyone[area.channel].items()
                if effective.has(code, level)
            }
            assert found == expected, (code, level)


def test_explains_the_page_in_constant_queries(owner):
    finance = make_role_group(owner, "Finance", {"invoices": "full"})
    extra = make_role_group(owner, "Cover", {"invoices": "read"})
    role = make_role(owner, "Clerk", groups=[finance])
    counts = []
    for n in (3, 30):
        while User.objects.filter(owner=owner).count() < n:
            user = make_user(owner, role=role)
            user.extra_role_groups.add(extra)
            make_override(make_user(owner), "invoices", "read", reason="cover")
        with CaptureQueriesContext(connection) as ctx:
            users = list(who_has_access(owner, "invoices", "read").select_related("role")[:50])
            rows = explain_access(owner, "invoices", users)
        counts.append(len(ctx.captured_queries))
        assert len(rows) == User.objects.filter(owner=owner).count()
    assert counts[0] == counts[1] <= 6  # one of them the elevations in force
    clerk = next(r for r in rows if r.user.role_id)
    assert clerk.level == "full"
    assert clerk.through == ["Role Clerk → Finance (full)", "Extra group Cover (read)"]
    covered = next(r for r in rows if not r.user.role_id)
    assert covered.through == ["Override (read): cover"]


def test_the_screen_pages_by_name_and_counts_up_to_a_cap(owner, signed_in, monkeypatch):
    from roles import reports

    finance = make_role_group(owner, "Finance", {"invoices": "full"})
    role = make_role(owner, "Clerk", groups=[finance])
    for n in range(7):
        make_user(owner, username=f"clerk-{n}", last_name=f"Person {n % 3}", role=role)
    admin = make_user(owner, is_superuser=True, privilege_level=10, last_name="Zed")
    client = signed_in(admin)
    monkeypatch.setattr(reports, "PAGE_SIZE", 3)
    monkeypatch.setattr(reports, "COUNT_CAP", 5)
    expected = list(who_has_access(owner, "invoices", "full").values_list("username", flat=True))
    assert len(expected) == 8  # the seven clerks and the platform administrator

    url, seen, pages = "/access/who-has-access/?area=invoices&level=full", [], []
    while url:
        response = client.get(url)
        assert response.status_code == 200
        page = response.context["page"]
        pages.append(page)
        seen += [u.username for u in page.users]
        url = "/access/who-has-access/" + page.next_url if page.next_url else ""
    assert seen == expected
    assert [len(p.users) for p in pages] == [3, 3, 2]
    back = client.get("/access/who-has-access/" + pages[2].previous_url).context["page"]
    assert [u.username for u in back.users] == expected[3:6]
    first = client.get("/access/who-has-access/" + back.previous_url).context["page"]
    assert [u.username for u in first.users] == expected[:3] and not first.has_previous

    html = client.get("/access/who-has-access/?area=invoices&level=full").content.decode()
    assert "More than 5 users reach full on Invoices" in html
    assert "count=all" in html
    exact = client.get("/access/who-has-access/?area=invoices&level=full&count=all")
    assert "8 users reach full on Invoices" in exact.content.decode()
    # An altered cursor starts again from the first page rather than failing.
    bogus = client.get("/access/who-has-access/?area=invoices&level=full&after=x:y")
    assert [u.username for u in bogus.context["page"].users] == expected[:3]


def test_the_screen_makes_a_fixed_number_of_queries(owner, signed_in, django_assert_num_queries):
    finance = make_role_group(owner, "Finance", {"invoices": "full"})
    role = make_role(owner, "Clerk", groups=[finance])
    admin = make_user(owner, is_superuser=True, privilege_level=10)
    client = signed_in(admin)
    url = "/access/who-has-access/?area=invoices&level=full"
    client.get(url)  # warm the permission cache
    for n in range(60):
        make_user(owner, username=f"c{n}", role=role).extra_role_groups.add(finance)
    # Session and user; the page and the capped count; the page explained (overrides, then
    # role groups, extra groups and elevations with their grants in one query); the eligible
    # people (none: no users query).
    with django_assert_num_queries(7):
        assert client.get(url).status_code == 200


def test_a_row_is_drawn_anew_when_what_it_shows_changes(owner, signed_in):
    finance = make_role_group(owner, "Finance", {"invoices": "full"})
    clerk = make_user(owner, last_name="Lovelace", role=make_role(owner, "Clerk", groups=[finance]))
    client = signed_in(make_user(owner, is_superuser=True, privilege_level=10))
    url = "/access/who-has-access/?area=invoices&level=full"
    assert "Lovelace" in client.get(url).content.decode()
    clerk.last_name = "Byron"
    clerk.save(update_fields=["last_name"])
    make_override(clerk, "invoices", "full", reason="cover")
    html = client.get(url).content.decode()
    assert "Byron" in html and "Lovelace" not in html and "Override (full)" in html
