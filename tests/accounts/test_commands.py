"""Management commands: createsuperuser and seed_demo."""

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


@pytest.mark.django_db
def test_seed_demo_is_idempotent():
    call_command("seed_demo", "--quiet")
    counts = (User.objects.count(), Role.objects.count(), RoleGroup.objects.count())
    call_command("seed_demo", "--quiet")
    assert (User.objects.count(), Role.objects.count(), RoleGroup.objects.count()) == counts
    owner = Owner.objects.get(name="Acme Telecom")
    assert owner.department_set.count() == 5
    assert User.objects.get(username="admin").role.name == "Administrator"


@pytest.mark.django_db
def test_seed_demo_bulk_users():
    call_command("seed_demo", "--quiet", "--users", "1200")
    owner = Owner.objects.get(name="Acme Telecom")
    assert User.objects.filter(owner=owner, username__startswith="acme-telecom-u").count() == 1200
    call_command("seed_demo", "--quiet", "--users", "1200")
    assert User.objects.filter(owner=owner, username__startswith="acme-telecom-u").count() == 1200
