"""Lockout: exactly N failures per account, generic message, cool-off, admin unlock, concurrency."""

import threading

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from accounts.auth_views import GENERIC_FAILURE
from audit.models import AuditEvent
from security import lockout, services
from security.models import AccountLockout
from tests.builders import PASSWORD, make_owner, make_user

from .conftest import clock, later, post_sign_in, set_policy


def failed(client, login, times, password="wrong guess"):
    for _ in range(times):
        response = post_sign_in(client, login, password)
        assert response.status_code == 400
        assert GENERIC_FAILURE in response.content.decode()


def reasons():
    return list(
        AuditEvent.objects.filter(action="sign_in_failed")
        .order_by("id")
        .values_list("context__reason", flat=True)
    )


@pytest.fixture
def fran(owner):
    set_policy(owner, lockout_threshold=3, lockout_minutes=15)
    return make_user(owner, username="fran", email="fran@example.test")


@pytest.mark.django_db
class TestLockout:
    def test_one_below_the_limit_the_right_password_still_works(self, client, fran):
        failed(client, "fran", 2)
        assert post_sign_in(client, "fran").status_code == 302
        assert not lockout.is_locked(fran)
        assert AccountLockout.objects.get(user=fran).failures == 0  # a sign-in clears the count

    def test_locked_after_exactly_n_failures_and_right_password_refused(self, client, fran):
        failed(client, "fran", 3)
        assert lockout.is_locked(fran)
        locked_page = post_sign_in(client, "fran", PASSWORD)
        assert locked_page.status_code == 400
        assert GENERIC_FAILURE in locked_page.content.decode()
        assert "_auth_user_id" not in client.session
        assert reasons() == ["wrong_password"] * 3 + ["locked_out"]
        event = AuditEvent.objects.get(action="locked_out")
        assert event.subject_user_id == fran.pk and event.owner_id == fran.owner_id

    def test_locked_page_reads_like_any_failure(self, client, fran):
        wrong = post_sign_in(client, "fran", "wrong guess").content.decode()
        failed(client, "fran", 2)
        locked = post_sign_in(client, "fran", PASSWORD).content.decode()
        strip = lambda page: page.split('name="csrfmiddlewaretoken"')[0]  # noqa: E731
        assert strip(wrong) == strip(locked)

    def test_username_and_email_count_for_the_same_account(self, client, fran):
        failed(client, "fran", 1)
        failed(client, "FRAN@example.test", 1)
        failed(client, "Fran", 1)
        assert lockout.is_locked(fran)

    def test_attempts_while_locked_do_not_extend_the_lockout(self, client, fran):
        failed(client, "fran", 3)
        with clock(later(minutes=10)):
            failed(client, "fran", 5)
        with clock(later(minutes=16)):
            assert not lockout.is_locked(fran)
            assert post_sign_in(client, "fran").status_code == 302

    def test_cool_off_ends_the_lockout(self, client, fran):
        failed(client, "fran", 3)
        with clock(later(minutes=14)):
            assert post_sign_in(client, "fran").status_code == 400
        client.cookies.clear()
        with clock(later(minutes=15, seconds=1)):
            assert post_sign_in(client, "fran").status_code == 302

    def test_old_failures_stop_counting(self, client, fran):
        failed(client, "fran", 2)
        with clock(later(minutes=16)):
            failed(client, "fran", 2)
            assert not lockout.is_locked(fran)

    def test_permanent_lockout_lasts_until_an_administrator_clears_it(
        self, client, owner, fran, admin_user
    ):
        set_policy(owner, lockout_threshold=3, lockout_minutes=0)
        failed(client, "fran", 3)
        with clock(later(days=400)):
            assert lockout.is_locked(fran)
            assert post_sign_in(client, "fran").status_code == 400
        services.clear_lockout(fran, actor=admin_user, reason="Called the help desk")
        assert not lockout.is_locked(fran)
        assert post_sign_in(client, "fran").status_code == 302
        event = AuditEvent.objects.get(action="lockout_cleared")
        assert event.actor_id == admin_user.pk and event.reason == "Called the help desk"

    def test_policy_of_one_owner_does_not_lock_another_owners_user(self, client, fran):
        other = make_owner()
        set_policy(other, lockout_threshold=10)
        gale = make_user(other, username="gale")
        failed(client, "gale", 3)
        assert not lockout.is_locked(gale)
        assert post_sign_in(client, "gale").status_code == 302
        failed(Client(), "fran", 3)
        assert lockout.is_locked(fran)

    def test_unknown_logins_get_the_same_message(self, client, db):
        for _ in range(12):
            response = post_sign_in(client, "ghost@example.test")
            assert response.status_code == 400
            assert GENERIC_FAILURE in response.content.decode()

    def test_a_later_step_can_count_failures(self, fran):
        assert lockout.register_failure(None, fran, "totp_wrong") is False
        assert lockout.register_failure(None, fran, "totp_wrong") is False
        assert lockout.register_failure(None, fran, "totp_wrong") is True
        assert lockout.is_locked(fran)
        event = AuditEvent.objects.get(action="locked_out")
        assert event.context["last_reason"] == "totp_wrong"

    def test_locked_user_ids_lists_only_this_owners_locked_users(self, client, owner, fran):
        other = make_owner()
        set_policy(other, lockout_threshold=3)
        gale = make_user(other, username="gale")
        make_user(owner, username="hugo")
        failed(client, "fran", 3)
        failed(client, "gale", 3)
        assert list(lockout.locked_user_ids(owner)) == [fran.pk]
        with clock(later(minutes=16)):
            assert list(lockout.locked_user_ids(owner)) == []
        assert list(lockout.locked_user_ids(other)) == [gale.pk]


@pytest.mark.django_db(transaction=True)
def test_parallel_wrong_passwords_cannot_pass_the_limit():
    owner = make_owner()
    limit = 3
    set_policy(owner, lockout_threshold=limit, lockout_minutes=15)
    user = make_user(owner, username="target")
    attempts = limit + 10
    barrier = threading.Barrier(attempts)
    statuses = []

    def attempt():
        try:
            barrier.wait()
            response = post_sign_in(Client(), "target", "wrong guess")
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=attempt) for _ in range(attempts)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert statuses == [400] * attempts
    assert lockout.is_locked(user)
    # Exactly `limit` passwords were checked; every other attempt was refused unchecked.
    assert AccountLockout.objects.get(user=user).failures == limit
    assert sorted(reasons()) == ["locked_out"] * 10 + ["wrong_password"] * limit
    assert AuditEvent.objects.filter(action="locked_out").count() == 1
    response = post_sign_in(Client(), "target", PASSWORD)
    assert response.status_code == 400


@pytest.mark.django_db
class TestLockoutsScreen:
    URL = reverse("security:lockouts")

    def test_anonymous_and_without_permission(self, client, signed_in, owner):
        assert client.get(self.URL).status_code == 302
        reader = make_user(owner, grants={"users": "read"})
        assert signed_in(reader).get(self.URL).status_code == 403

    def test_lists_locked_users_and_unlocks_with_audit(self, client, signed_in, admin_user, fran):
        failed(client, "fran", 3)
        admin = signed_in(admin_user)
        page = admin.get(self.URL)
        assert page.status_code == 200
        assert "Unlock fran" in page.content.decode()
        response = admin.post(
            reverse("security:lockout_clear", args=[fran.pk]), {"reason": "Verified by phone"}
        )
        assert response.status_code == 302
        assert not lockout.is_locked(fran)
        assert AuditEvent.objects.get(action="lockout_cleared").reason == "Verified by phone"
        assert "Nobody is locked out" in admin.get(self.URL).content.decode()

    def test_another_owners_user_is_not_found(self, signed_in, admin_user):
        stranger = make_user(make_owner())
        response = signed_in(admin_user).post(reverse("security:lockout_clear", args=[stranger.pk]))
        assert response.status_code == 404
        assert not AuditEvent.objects.filter(action="lockout_cleared").exists()
