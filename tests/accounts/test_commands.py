"""Management commands: createsuperuser and seed_demo."""

import io
import re

import pytest
from django.core.management import call_command

from accounts.models import Owner, User
from roles.models import Role, RoleGroup


@pytest.mark.django_db
def test_createsuperuser_noinput_creates_a_platform_administrator(monkeypatch):
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "a very long platform passphrase")
    call_command(
        "createsuperuser", "--noinput", "--username", "root", "--email", "root@example.test"
    )
    user = User.objects.get(username="root")
    assert user.is_superuser
    assert user.check_password("a very long platform passphrase")
    assert user.owner.slug == "platform"
    assert user.password.startswith("md5$") or user.password.startswith("argon2")


def _demo_counts() -> dict:
    from accounts.tokens.models import ApiToken
    from audit.models import AuditEvent
    from delivery.models import OutboundEmail
    from reviews.models import ReviewCampaign, ReviewItem
    from roles.models import AccessRequest, PermissionOverride, SodRule

    return {
        model.__name__: model.objects.count()
        for model in (
            User,
            Role,
            RoleGroup,
            AuditEvent,
            AccessRequest,
            SodRule,
            ReviewCampaign,
            ReviewItem,
            PermissionOverride,
            ApiToken,
            OutboundEmail,
        )
    }


@pytest.mark.django_db
def test_seed_demo_tells_its_story_once():
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert "Seeded Acme Telecom: 31 people and a month of history" in out.getvalue()
    assert "sign in as admin / 'correct horse battery staple'" in out.getvalue()
    counts = _demo_counts()
    out = io.StringIO()
    call_command("seed_demo", stdout=out)
    assert _demo_counts() == counts
    assert "already loaded: nothing added" in out.getvalue()
    assert "sign in as admin / 'correct horse battery staple'" in out.getvalue()
    call_command("audit_verify", stdout=io.StringIO())  # raises on a broken chain

    owner = Owner.objects.get(name="Acme Telecom")
    assert owner.department_set.count() == 5
    assert User.objects.get(username="admin").role.name == "Administrator"
    assert User.objects.get(username="admin").check_password("correct horse battery staple")
    assert counts["User"] > 24 and counts["AuditEvent"] > 500


@pytest.mark.django_db
def test_seeded_demo_gives_every_screen_something_to_show(client):
    from django.urls import reverse
    from django.utils import timezone

    from audit.models import AuditEvent
    from reviews import reports
    from roles import sod
    from roles.models import AccessRequest, SodRule

    call_command("seed_demo", "--quiet")
    owner = Owner.objects.get(name="Acme Telecom")
    now = timezone.now()
    counts = reports.counts(owner, now=now)
    assert counts.dormant == 1  # Jack, four months without a sign-in
    assert counts.tokens == 1  # the CRM token, expiring within days
    assert counts.overrides == 1  # Hannah's quarter-end cover, with its expiry
    assert counts.without_2fa > 0 and counts.privileged > 0 and counts.unused_groups > 0
    assert counts.active_elevations == 1 and counts.waiting_requests == 1
    assert AccessRequest.objects.get(user__username="mei.chen").status(now) == "active"
    invoicing = SodRule.objects.get(owner=owner, name="Invoicing vs recording payments")
    assert "priya.shah" in {u.username for u in sod.violators(invoicing)}
    events = AuditEvent.objects.filter(owner_id=owner.pk)
    assert events.filter(occurred_at__lt=now - timezone.timedelta(days=25)).exists()
    assert events.filter(action="locked_out").count() == 1
    assert events.filter(action="lockout_cleared").count() == 1
    assert events.filter(action="user_changed").exclude(reason="").exists()

    client.force_login(
        User.objects.get(username="admin"), backend="accounts.backends.PortalBackend"
    )
    for name, expected in (
        ("audit:activity", "Chris Morgan"),
        ("reviews:dashboard", "Finance access review"),
        ("reviews:report_dormant", "Jack Wilson"),
        ("reviews:report_tokens", "CRM nightly sync"),
        ("reviews:report_overrides", "Hannah Weber"),
        ("reviews:campaign_list", "Finance access review"),
    ):
        response = client.get(reverse(name))
        assert response.status_code == 200, name
        assert expected in response.content.decode(), name
    activity = client.get(reverse("audit:activity")).content.decode()
    signed_in, failed_attempts = (
        int(re.search(rf"{label} \((\d+)\)", activity).group(1))
        for label in ("Sign-ins", "Failed attempts")
    )
    assert signed_in > 300 and failed_attempts > 20  # the chart of the last 30 days
    failed = client.get(reverse("audit:activity_tab", args=["failed"])).content.decode()
    assert "Wrong password" in failed
    changes = client.get(reverse("audit:activity_tab", args=["changes"])).content.decode()
    assert "Change of role" in changes


@pytest.mark.django_db
def test_seed_demo_bulk_users():
    call_command("seed_demo", "--quiet", "--users", "1200")
    owner = Owner.objects.get(name="Acme Telecom")
    assert User.objects.filter(owner=owner, username__startswith="acme-telecom-u").count() == 1200
    call_command("seed_demo", "--quiet", "--users", "1200")
    assert User.objects.filter(owner=owner, username__startswith="acme-telecom-u").count() == 1200


# Run in `manage.py shell` on the seeded SQLite database: the demo administrator opens every
# screen that takes no argument, and a few filtered ones; none may fail on SQLite.
SWEEP_SCREENS = """
from django.test import Client

from accounts.models import User
from portal.access import walk_patterns

admin = User.objects.get(username="admin")
client = Client(HTTP_HOST="localhost")
client.force_login(admin, backend="accounts.backends.PortalBackend")
paths = {
    route
    for route, _ in walk_patterns()
    if "<" not in route and "sign-out" not in route and not route.startswith(("/api/", "/scim/"))
}
paths |= {
    "/access/who-has-access/?area=invoices&level=full",
    "/access/who-has-access/?area=users&level=full&count=all",
    "/activity/?q=mei",
    "/activity/all/?person=admin",
}
failed = [(p, s) for p in sorted(paths) if (s := client.get(p).status_code) >= 500]
print(f"swept {len(paths)} screens; server errors: {failed}")
"""


def test_make_run_seeds_the_demo_on_sqlite(tmp_path):
    """`make run`'s path: the embedded SQLite default, migrated and seeded, twice, verified, and
    every screen opened on it."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "DJANGO_"))}
    env.update(DEBUG="true", VAR_DIR=str(tmp_path))

    def manage(*args):
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        ).stdout

    manage("migrate", "--no-input", "-v0")
    assert "a month of history" in manage("seed_demo")
    assert "nothing added" in manage("seed_demo")
    assert "Every chain is intact." in manage("audit_verify")
    assert (tmp_path / "db.sqlite3").exists()
    swept = manage("shell", "-c", SWEEP_SCREENS)
    assert "server errors: []" in swept, swept
