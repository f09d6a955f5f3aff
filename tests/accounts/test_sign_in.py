"""Sign-in: every failure looks the same to the person; the audit log keeps the exact reason."""

import pytest
from django.urls import reverse

from accounts.auth_views import GENERIC_FAILURE
from audit.models import AuditEvent
from tests.builders import PASSWORD, make_user

SIGN_IN = "/sign-in/"


def post_sign_in(client, login, password=PASSWORD, **extra):
    return client.post(SIGN_IN, {"login": login, "password": password, **extra})


def last_event():
    return AuditEvent.objects.order_by("-id").first()


@pytest.mark.django_db
class TestRefusals:
    def test_wrong_password(self, client, owner):
        user = make_user(owner, username="fran")
        response = post_sign_in(client, "fran", "not the password")
        assert response.status_code == 400
        assert GENERIC_FAILURE in response.content.decode()
        event = last_event()
        assert event.action == "sign_in_failed"
        assert event.context["reason"] == "wrong_password"
        assert event.subject_user_id == user.pk
        assert event.owner_id == owner.pk

    def test_unknown_user(self, client, db):
        response = post_sign_in(client, "nobody@example.test")
        assert GENERIC_FAILURE in response.content.decode()
        event = last_event()
        assert event.context["reason"] == "unknown_user"
        assert event.actor_label == "nobody@example.test"
        assert event.subject_user_id is None

    def test_user_without_login_flag(self, client, owner):
        make_user(owner, username="leaver", allow_login=False)
        response = post_sign_in(client, "leaver")
        assert GENERIC_FAILURE in response.content.decode()
        assert last_event().context["reason"] == "login_disabled"
        assert "_auth_user_id" not in client.session

    def test_api_user_cannot_sign_in(self, client, owner):
        make_user(owner, username="robot", kind="api", allow_api_read=True)
        response = post_sign_in(client, "robot")
        assert GENERIC_FAILURE in response.content.decode()
        assert last_event().context["reason"] == "api_user"

    def test_every_refusal_reads_the_same(self, client, owner):
        make_user(owner, username="fran")
        make_user(owner, username="leaver", allow_login=False)
        bodies = {
            post_sign_in(client, login, password)
            .content.decode()
            .replace(client.cookies["csrftoken"].value if "csrftoken" in client.cookies else "", "")
            for login, password in [
                ("fran", "wrong one"),
                ("ghost", PASSWORD),
                ("leaver", PASSWORD),
            ]
        }
        messages = {GENERIC_FAILURE in body for body in bodies}
        assert messages == {True}

    def test_empty_form_is_refused_without_error(self, client, db):
        response = client.post(SIGN_IN, {"login": "", "password": ""})
        assert response.status_code == 400
        assert "This field is required" in response.content.decode()

    def test_overlong_and_unicode_input_is_handled(self, client, db):
        response = post_sign_in(client, "ü" * 300, "🔑" * 2000)
        assert response.status_code == 400


@pytest.mark.django_db
class TestSuccess:
    def test_signs_in_with_username_or_email_in_any_case(self, client, owner):
        user = make_user(owner, username="Fran", email="fran@example.test")
        for login in ("fran", "FRAN@EXAMPLE.TEST"):
            client.cookies.clear()
            response = post_sign_in(client, login)
            assert response.status_code == 302
            assert response.headers["Location"] == "/"
            assert int(client.session["_auth_user_id"]) == user.pk
        event = last_event()
        assert event.action == "sign_in"
        assert event.actor_id == user.pk
        assert event.method == "password"

    def test_session_key_rotates_on_sign_in(self, client, owner):
        make_user(owner, username="fran")
        client.get(SIGN_IN)
        client.session["probe"] = 1
        before = client.session.session_key
        post_sign_in(client, "fran")
        assert client.session.session_key != before

    def test_next_stays_on_this_site(self, client, owner):
        make_user(owner, username="fran")
        response = post_sign_in(client, "fran", next="https://evil.example/phish")
        assert response.headers["Location"] == "/"
        client.cookies.clear()
        response = post_sign_in(client, "fran", next="/me/access/")
        assert response.headers["Location"] == "/me/access/"

    def test_home_shows_the_person(self, client, owner):
        make_user(owner, username="fran", first_name="Fran", last_name="Finance")
        post_sign_in(client, "fran")
        page = client.get("/").content.decode()
        assert "Fran Finance" in page
        assert "Acme Test" in page

    def test_sign_out_needs_post_and_is_recorded(self, client, owner):
        user = make_user(owner, username="fran")
        post_sign_in(client, "fran")
        assert client.get(reverse("accounts:sign_out")).status_code == 405
        response = client.post(reverse("accounts:sign_out"))
        assert response.status_code == 302
        assert "_auth_user_id" not in client.session
        assert last_event().action == "sign_out"
        assert last_event().actor_id == user.pk

    def test_deactivated_user_loses_the_session_on_next_request(self, client, owner):
        user = make_user(owner, username="fran")
        post_sign_in(client, "fran")
        assert client.get("/").status_code == 200
        type(user).objects.filter(pk=user.pk).update(allow_login=False)
        response = client.get("/")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/sign-in/")


@pytest.mark.django_db
def test_user_locale_and_time_zone_apply(client, owner):
    make_user(owner, username="fran", locale="de", time_zone="Asia/Tokyo")
    post_sign_in(client, "fran")
    response = client.get("/")
    assert response.headers["Content-Language"] == "de"
    assert '<html lang="de">' in response.content.decode()


@pytest.mark.django_db
def test_locked_out_account_reads_like_any_failure(client, owner):
    from security.models import PasswordPolicy

    PasswordPolicy.objects.create(owner=owner, lockout_threshold=3)
    make_user(owner, username="fran")
    for _ in range(3):
        post_sign_in(client, "fran", "wrong guess")
    response = post_sign_in(client, "fran")
    assert response.status_code == 400
    assert GENERIC_FAILURE in response.content.decode()
    assert "_auth_user_id" not in client.session
    assert last_event().context["reason"] == "locked_out"
    assert last_event().reason == "Locked out"
