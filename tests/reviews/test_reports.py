"""Standing governance reports: each finds its seeded example and nothing else."""

import datetime

import pytest
from django.utils import timezone

from reviews import reports
from roles import catalog
from security.models import PasswordPolicy
from tests.builders import (
    make_api_user,
    make_override,
    make_owner,
    make_role,
    make_role_group,
    make_token,
    make_totp_device,
    make_user,
)

pytestmark = pytest.mark.django_db

NOW = timezone.now()
DAY = datetime.timedelta(days=1)


@pytest.fixture
def other_owner_noise():
    """A user of another owner who would match every report: never listed."""
    other = make_owner("Elsewhere")
    user = make_user(other, grants={catalog.USERS: "full"}, last_sign_in_at=NOW - 400 * DAY)
    make_override(user, catalog.PARAMETERS, "full")
    make_role_group(other, "Unused elsewhere")
    return user


def test_dormant_accounts(owner, other_owner_noise):
    make_user(owner, username="recent", last_sign_in_at=NOW - 10 * DAY)
    make_user(owner, username="new", created_at=NOW - 5 * DAY)
    make_user(owner, username="gone", last_sign_in_at=NOW - 200 * DAY, allow_login=False)
    sleepy = make_user(owner, username="sleepy", last_sign_in_at=NOW - 120 * DAY)
    never = make_user(owner, username="never", created_at=NOW - 100 * DAY)

    assert list(reports.dormant_accounts(owner, days=90, now=NOW)) == [sleepy, never]
    assert list(reports.dormant_accounts(owner, days=150, now=NOW)) == []


def test_users_without_2fa_unless_the_policy_forces_it(owner, other_owner_noise):
    enrolled = make_user(owner, username="enrolled")
    make_totp_device(enrolled)
    make_user(owner, username="sso", auth_source="saml")
    make_user(owner, username="off", allow_login=False)
    make_api_user(owner, username="robot")
    bare = make_user(owner, username="bare")

    assert list(reports.users_without_2fa(owner)) == [bare]

    PasswordPolicy.objects.update_or_create(owner=owner, defaults={"require_2fa": True})
    assert list(reports.users_without_2fa(owner)) == []


def test_tokens_near_expiry_or_never_used(owner, admin_user, other_owner_noise):
    robot = make_api_user(owner, api_grants={catalog.API_USERS: "read"}, username="robot")
    used, _ = make_token(robot, actor=admin_user, days=60, name="Used")
    used.last_used_at = NOW
    used.save()
    soon, _ = make_token(robot, actor=admin_user, days=10, name="Soon")
    soon.last_used_at = NOW
    soon.save()
    idle, _ = make_token(robot, actor=admin_user, days=60, name="Idle")
    revoked, _ = make_token(robot, actor=admin_user, days=60, name="Revoked")
    revoked.revoked_at = NOW
    revoked.save()

    found = list(reports.tokens_to_review(owner, now=timezone.now()))

    assert [t.name for t in found] == ["Soon", "Idle"]


def test_overrides_that_raise_access_above_the_role(owner, other_owner_noise):
    role = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"invoices": "read"})])
    user = make_user(owner, role=role, username="raised")
    make_override(user, "invoices", "full", reason="Year end")
    make_override(user, catalog.PARAMETERS, "none", reason="Restricts")  # a restriction
    same = make_user(owner, role=role, username="same")
    make_override(same, "invoices", "read", reason="Confirms")
    expired = make_user(owner, role=role, username="expired")
    make_override(expired, "invoices", "full", expires_at=NOW - DAY)

    rows = reports.overrides_above_role(owner, now=NOW)

    assert [(r.username, r.area.code, r.group_level, r.level) for r in rows] == [
        ("raised", "invoices", "read", "full")
    ]


def test_role_groups_used_by_no_role(owner, other_owner_noise):
    used = make_role_group(owner, "In a role")
    make_role(owner, "Clerk", groups=[used])
    lonely = make_role_group(owner, "Lonely")
    make_user(owner).extra_role_groups.add(lonely)

    rows = list(reports.unused_role_groups(owner))

    assert rows == [lonely]
    assert rows[0].extra_user_count == 1


def test_privileged_users(owner, other_owner_noise):
    admin = make_user(owner, username="useradmin", grants={catalog.USERS: "full"})
    dp = make_user(owner, username="dpo", grants={catalog.DP_ACCESS: "read"})
    make_user(owner, username="reader", grants={catalog.USERS: "read"})
    make_user(owner, username="off", grants={catalog.USERS: "full"}, allow_login=False)
    low = make_user(owner, username="low", grants={catalog.DP_ACCESS: "read"}, privilege_level=0)
    owner.data_protection_min_privilege = 3
    owner.save()

    rows = list(reports.privileged_users(owner))

    assert {u.username for u in rows} == {"useradmin", "dpo"}
    assert low not in rows
    by_name = {u.username: u for u in rows}
    assert getattr(by_name["useradmin"], f"p_{catalog.USERS}") is True
    assert getattr(by_name["dpo"], f"p_{catalog.DP_ACCESS}") is True
    assert getattr(by_name["dpo"], f"p_{catalog.USERS}") is False
    assert admin in rows and dp in rows


def test_counts_for_the_dashboard(owner, admin_user, other_owner_noise):
    make_user(owner, username="sleepy", last_sign_in_at=NOW - 120 * DAY)
    counts = reports.counts(owner, now=NOW)
    # admin_user never signed in but was created now: not dormant; it is privileged.
    assert counts.dormant == 1
    assert counts.privileged == 1
    assert counts.without_2fa == 2
    assert counts.tokens == 0
    assert counts.unused_groups == 0


def test_counts_take_the_same_number_of_queries_whatever_the_number_of_users(owner):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    role = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"invoices": "read"})])

    def add(n):
        for _ in range(n):
            user = make_user(owner, role=role, last_sign_in_at=NOW - 200 * DAY)
            make_override(user, "invoices", "full")

    def queries():
        with CaptureQueriesContext(connection) as captured:
            reports.counts(owner, now=NOW)
        return len(captured)

    add(2)
    few = queries()
    add(15)
    assert queries() == few
