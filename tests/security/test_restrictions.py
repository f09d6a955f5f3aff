"""Per-user sign-in restrictions: allowed networks and hours in the user's time zone."""

import datetime

import pytest
from django.urls import reverse

from accounts.auth_views import GENERIC_FAILURE
from audit.models import AuditEvent
from security.models import AccountLockout, SignInRestriction
from tests.builders import make_owner, make_user

from .conftest import clock, post_sign_in, set_policy

UTC = datetime.UTC


def at_utc(hour, minute=0):
    return datetime.datetime(2026, 11, 23, hour, minute, tzinfo=UTC)


def last_failure_reason():
    return AuditEvent.objects.filter(action="sign_in_failed").latest("id").context["reason"]


@pytest.fixture
def fran(owner):
    return make_user(owner, username="fran", time_zone="Asia/Tokyo")


@pytest.mark.django_db
class TestAtSignIn:
    def test_address_outside_the_allowed_networks_is_refused(self, client, fran):
        SignInRestriction.objects.create(user=fran, allowed_networks="203.0.113.0/24\n10.1.2.3")
        response = post_sign_in(client, "fran", REMOTE_ADDR="198.51.100.7")
        assert response.status_code == 400
        assert GENERIC_FAILURE in response.content.decode()
        assert last_failure_reason() == "address_not_allowed"
        assert post_sign_in(client, "fran", REMOTE_ADDR="203.0.113.77").status_code == 302

    def test_hours_are_read_in_the_users_time_zone(self, client, fran):
        SignInRestriction.objects.create(
            user=fran, allowed_from=datetime.time(9), allowed_until=datetime.time(17)
        )
        with clock(at_utc(10)):  # 19:00 in Tokyo
            assert post_sign_in(client, "fran").status_code == 400
        assert last_failure_reason() == "outside_allowed_hours"
        with clock(at_utc(1)):  # 10:00 in Tokyo
            assert post_sign_in(client, "fran").status_code == 302

    def test_refusals_do_not_count_towards_a_lockout(self, client, owner, fran):
        set_policy(owner, lockout_threshold=3)
        SignInRestriction.objects.create(user=fran, allowed_networks="203.0.113.0/24")
        for _ in range(4):
            post_sign_in(client, "fran", REMOTE_ADDR="198.51.100.7")
        assert AccountLockout.objects.get(user=fran).failures == 0
        assert post_sign_in(client, "fran", REMOTE_ADDR="203.0.113.1").status_code == 302


@pytest.mark.parametrize(
    ("start", "end", "hour", "allowed"),
    [
        (9, 17, 9, True),
        (9, 17, 16, True),
        (9, 17, 17, False),
        (22, 6, 23, True),
        (22, 6, 5, True),
        (22, 6, 6, False),
        (22, 6, 12, False),
    ],
)
def test_allowed_hours_boundaries(start, end, hour, allowed):
    from accounts.models import User

    restriction = SignInRestriction(
        user=User(time_zone="UTC"),
        allowed_from=datetime.time(start),
        allowed_until=datetime.time(end),
    )
    assert restriction.allows_time(at_utc(hour)) is allowed


@pytest.mark.django_db
class TestScreen:
    def url(self, user):
        return reverse("security:user_restriction", args=[user.pk])

    def test_access(self, client, signed_in, owner, fran):
        assert client.get(self.url(fran)).status_code == 302
        reader = make_user(owner, grants={"users": "read"})
        assert signed_in(reader).get(self.url(fran)).status_code == 403

    def test_bad_input_is_refused_beside_the_field(self, signed_in, admin_user, fran):
        client = signed_in(admin_user)
        response = client.post(
            self.url(fran), {"allowed_networks": "not-a-network", "row_version": 1}
        )
        assert response.status_code == 400
        assert "Not an IP address or network" in response.content.decode()
        response = client.post(
            self.url(fran), {"allowed_networks": "", "allowed_from": "09:00", "row_version": 1}
        )
        assert response.status_code == 400
        assert "Give both the start and the end" in response.content.decode()
        response = client.post(self.url(fran), {"allowed_networks": "10.0.0.0/8", "row_version": 1})
        assert response.status_code == 400
        assert "This field is required." in response.content.decode()
        assert not SignInRestriction.objects.exists()

    def test_saved_and_audited(self, signed_in, admin_user, fran):
        client = signed_in(admin_user)
        assert client.get(self.url(fran)).status_code == 200
        response = client.post(
            self.url(fran),
            {
                "allowed_networks": "203.0.113.0/24",
                "allowed_from": "07:00",
                "allowed_until": "19:00",
                "row_version": 1,
                "reason": "Office hours only (ticket 4411)",
            },
        )
        assert response.status_code == 302
        restriction = SignInRestriction.objects.get(user=fran)
        assert restriction.allowed_from == datetime.time(7)
        event = AuditEvent.objects.get(action="user_changed")
        assert event.details == "Sign-in restriction"
        assert event.reason == "Office hours only (ticket 4411)"
        assert event.changes["allowed_networks"] == ["", "203.0.113.0/24"]
        cleared = {"allowed_networks": "", "row_version": 1, "reason": "Lifted"}
        assert client.post(self.url(fran), cleared).status_code == 302
        stale = client.post(self.url(fran), {**cleared, "allowed_networks": "10.0.0.0/8"})
        assert "Someone else changed this" in stale.content.decode()

    def test_another_owners_user_is_not_found(self, signed_in, admin_user):
        stranger = make_user(make_owner())
        assert signed_in(admin_user).get(self.url(stranger)).status_code == 404
