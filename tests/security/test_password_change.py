"""Changing one's password, and the forced change after expiry."""

import datetime

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import User
from audit.models import AuditEvent
from tests.builders import PASSWORD, make_user

from .conftest import clock, later, post_sign_in, set_policy

URL = reverse("security:password_change")
NEW = "a brand new passphrase"


def change(client, current=PASSWORD, new=NEW, again=None, **extra):
    data = {"current_password": current, "new_password": new, "new_password_again": again or new}
    return client.post(URL, {**data, **extra})


@pytest.mark.django_db
class TestChangePassword:
    def test_anonymous_is_sent_to_sign_in(self, client):
        assert client.get(URL).status_code == 302

    def test_wrong_current_password_is_refused(self, signed_in, owner):
        user = make_user(owner)
        response = change(signed_in(user), current="not mine")
        assert response.status_code == 400
        assert "That is not your current password." in response.content.decode()
        user.refresh_from_db()
        assert user.check_password(PASSWORD)

    def test_policy_rule_is_named(self, signed_in, owner):
        user = make_user(owner)
        response = change(signed_in(user), new="too short")
        assert response.status_code == 400
        assert "Use at least 15 characters (this one has 9)." in response.content.decode()

    def test_mismatch_is_refused(self, signed_in, owner):
        response = change(signed_in(make_user(owner)), again="a different passphrase")
        assert "The two new passwords differ." in response.content.decode()

    def test_changed_audited_and_still_signed_in(self, signed_in, owner):
        user = make_user(owner)
        client = signed_in(user)
        assert client.get(URL).status_code == 200
        response = change(client)
        assert response.status_code == 302
        user.refresh_from_db()
        assert user.check_password(NEW)
        assert client.get("/").status_code == 200
        assert AuditEvent.objects.get(action="password_changed").actor_id == user.pk

    def test_sso_user_has_nothing_to_change(self, signed_in, owner):
        user = make_user(owner, auth_source="saml")
        User.objects.filter(pk=user.pk).update(password="!unusable")
        user.refresh_from_db()
        page = signed_in(user).get(URL).content.decode()
        assert "identity provider" in page


@pytest.mark.django_db
class TestExpiry:
    @pytest.fixture
    def fran(self, owner):
        set_policy(owner, expiry_days=90)
        user = make_user(owner, username="fran")
        User.objects.filter(pk=user.pk).update(password_changed_at=timezone.now())
        return user

    def test_not_expired_signs_in_normally(self, client, fran):
        with clock(later(days=89)):
            response = post_sign_in(client, "fran")
        assert response.headers["Location"] == "/"

    def test_expired_password_must_be_changed_before_anything_else(self, client, fran):
        with clock(later(days=91)):
            response = post_sign_in(client, "fran")
            assert response.status_code == 302
            assert response.headers["Location"] == URL + "?next=%2F"
            assert AuditEvent.objects.filter(action="password_expired").exists()
            for path in ("/", "/me/access/", reverse("security:my_sessions")):
                refused = client.get(path)
                assert refused.status_code == 302
                assert refused.headers["Location"].startswith(URL)
            page = client.get(URL).content.decode()
            assert "Your password has expired" in page
            assert change(client, next="/").headers["Location"] == "/"
            assert client.get("/").status_code == 200
        assert AuditEvent.objects.get(action="password_changed").context["via"] == "expiry"

    def test_must_change_flag_forces_a_change(self, signed_in, owner):
        user = make_user(owner, must_change_password=True)
        client = signed_in(user)
        assert client.get("/").headers["Location"].startswith(URL)
        change(client)
        assert client.get("/").status_code == 200

    def test_expiry_of_owner_a_does_not_touch_owner_b(self, client, fran):
        from tests.builders import make_owner

        gale = make_user(make_owner(), username="gale")
        User.objects.filter(pk=gale.pk).update(
            password_changed_at=timezone.now() - datetime.timedelta(days=400)
        )
        assert post_sign_in(client, "gale").headers["Location"] == "/"
