"""Sessions: idle and absolute timeouts, key rotation on a permission change, tracking, ending."""

import pytest
from django.test import Client
from django.urls import reverse

from audit.models import AuditEvent
from roles.versions import bump_user
from security.models import UserSession
from tests.builders import make_owner, make_user

from .conftest import clock, later, set_policy


@pytest.fixture
def fran(owner):
    set_policy(owner, idle_timeout_minutes=30, absolute_timeout_hours=1)
    return make_user(owner, username="fran")


def signed_in_client(user):
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    return client


@pytest.mark.django_db
class TestTimeouts:
    def test_idle_timeout_ends_the_session(self, fran):
        client = signed_in_client(fran)
        assert client.get("/").status_code == 200
        with clock(later(minutes=29)):
            assert client.get("/").status_code == 200
        with clock(later(minutes=29 + 30)):
            response = client.get("/me/access/")
        assert response.status_code == 302
        assert response.headers["Location"] == "/sign-in/?next=%2Fme%2Faccess%2F"
        assert "_auth_user_id" not in client.session
        event = AuditEvent.objects.get(action="session_expired")
        assert event.context["kind"] == "idle" and event.actor_id == fran.pk
        page = client.get(response.headers["Location"]).content.decode()
        assert "You were signed out after a period without activity" in page

    def test_activity_keeps_the_session_until_its_absolute_lifetime(self, fran):
        client = signed_in_client(fran)
        assert client.get("/").status_code == 200
        for minutes in (20, 40, 59):
            with clock(later(minutes=minutes)):
                assert client.get("/").status_code == 200
        with clock(later(minutes=60, seconds=1)):
            response = client.get("/")
        assert response.status_code == 302
        assert AuditEvent.objects.get(action="session_expired").context["kind"] == "absolute"

    def test_owner_b_keeps_its_own_timeouts(self, fran):
        other = make_owner()
        set_policy(other, idle_timeout_minutes=120)
        gale = make_user(other, username="gale")
        client = signed_in_client(gale)
        client.get("/")
        with clock(later(minutes=90)):
            assert client.get("/").status_code == 200

    def test_page_carries_the_idle_warning_hook(self, fran):
        page = signed_in_client(fran).get("/").content.decode()
        assert 'data-idle-remaining="1800"' in page
        assert 'data-idle-warning="120"' in page
        assert "js/session.js" in page
        assert "<script>" not in page  # nothing inline: the CSP allows none

    def test_keep_alive_counts_as_activity(self, fran):
        client = signed_in_client(fran)
        client.get("/")
        with clock(later(minutes=25)):
            assert client.get(reverse("security:keep_alive")).status_code == 204
        with clock(later(minutes=50)):
            assert client.get("/").status_code == 200
        assert Client().get(reverse("security:keep_alive")).status_code == 302


@pytest.mark.django_db
def test_session_key_rotates_when_the_users_permissions_change(fran):
    client = signed_in_client(fran)
    client.get("/")
    before = client.session.session_key
    client.get("/")
    assert client.session.session_key == before
    bump_user(fran)
    assert client.get("/").status_code == 200
    assert client.session.session_key != before
    assert client.get("/").status_code == 200
    assert UserSession.objects.filter(user=fran, ended_at__isnull=True).count() == 1


@pytest.mark.django_db
class TestYourSessions:
    URL = reverse("security:my_sessions")

    def test_anonymous_is_sent_to_sign_in(self, client):
        assert client.get(self.URL).status_code == 302

    def test_lists_sessions_and_signs_out_the_others(self, fran):
        laptop, phone = signed_in_client(fran), signed_in_client(fran)
        phone.get("/", HTTP_USER_AGENT="Phone browser")
        page = laptop.get(self.URL, HTTP_USER_AGENT="Laptop browser").content.decode()
        assert "Phone browser" in page and "Laptop browser" in page
        assert "This session" in page
        response = laptop.post(self.URL)
        assert response.status_code == 302
        assert laptop.get("/").status_code == 200
        assert phone.get("/").status_code == 302
        event = AuditEvent.objects.get(action="sessions_ended")
        assert event.context["count"] == 1 and event.actor_id == fran.pk


CHROME = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 "
    "Safari/537.36"
)
FIREFOX = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:140.0) Gecko/20100101 Firefox/140.0"


@pytest.mark.django_db
class TestEndOneSession:
    def test_the_person_signs_out_of_one_session_and_sees_it_ended(self, fran):
        laptop, phone, tablet = (signed_in_client(fran) for _ in range(3))
        laptop.get("/", HTTP_USER_AGENT=CHROME)
        phone.get("/", HTTP_USER_AGENT=FIREFOX)
        tablet.get("/", HTTP_USER_AGENT=FIREFOX)
        page = laptop.get(TestYourSessions.URL).content.decode()
        assert "Chrome 156 on Linux" in page and "Firefox 140 on Windows" in page
        assert f'title="{CHROME}"' in page  # the whole user agent on hover
        row = UserSession.objects.get(key_hash=hash_key(phone))
        response = laptop.post(TestYourSessions.URL, {"session": row.pk}, follow=True)
        assert "Signed out of Firefox 140 on Windows." in response.content.decode()
        assert phone.get("/").status_code == 302
        assert tablet.get("/").status_code == 200 and laptop.get("/").status_code == 200
        event = AuditEvent.objects.get(action="sessions_ended")
        assert event.actor_id == fran.pk and event.context["count"] == 1
        assert event.context["device"] == "Firefox 140 on Windows"
        assert event.context["session_id"] == row.pk
        page = laptop.get(TestYourSessions.URL).content.decode()
        assert "Ended " in page and "Signed out from Your sessions" in page

    def test_the_current_session_and_other_peoples_are_not_ended_here(self, owner, fran):
        laptop = signed_in_client(fran)
        laptop.get("/")
        mine = UserSession.objects.get(key_hash=hash_key(laptop))
        response = laptop.post(TestYourSessions.URL, {"session": mine.pk}, follow=True)
        assert "That is the session you are using" in response.content.decode()
        other = signed_in_client(make_user(owner, username="gale"))
        other.get("/")
        theirs = UserSession.objects.get(key_hash=hash_key(other))
        assert laptop.post(TestYourSessions.URL, {"session": theirs.pk}).status_code == 404
        assert laptop.post(TestYourSessions.URL, {"session": "x"}).status_code == 404
        assert not UserSession.objects.filter(ended_at__isnull=False).exists()
        assert not AuditEvent.objects.filter(action="sessions_ended").exists()

    def test_an_administrator_ends_one_session_with_a_reason(self, signed_in, admin_user, fran):
        phone, laptop = signed_in_client(fran), signed_in_client(fran)
        phone.get("/", HTTP_USER_AGENT=FIREFOX)
        laptop.get("/", HTTP_USER_AGENT=CHROME)
        row = UserSession.objects.get(key_hash=hash_key(phone))
        admin = signed_in(admin_user)
        url = reverse("security:user_sessions", args=[fran.pk])
        response = admin.post(url, {"session": row.pk, "reason": "Phone lost"})
        assert response.status_code == 302
        assert phone.get("/").status_code == 302 and laptop.get("/").status_code == 200
        event = AuditEvent.objects.get(action="sessions_ended")
        assert event.actor_id == admin_user.pk and event.subject_user_id == fran.pk
        assert event.reason == "Phone lost" and event.context["count"] == 1
        page = admin.get(url).content.decode()
        assert "Chrome 156 on Linux" in page and "Ended " in page and "Phone lost" in page
        assert admin.post(url, {"session": row.pk}).status_code == 302  # already ended: no event
        assert AuditEvent.objects.filter(action="sessions_ended").count() == 1

    def test_the_record_lists_live_sessions_with_an_end_button(self, signed_in, admin_user, fran):
        signed_in_client(fran).get("/", HTTP_USER_AGENT=CHROME)
        page = signed_in(admin_user).get(f"/users/{fran.pk}/security/").content.decode()
        assert "Chrome 156 on Linux" in page
        assert 'name="session"' in page and "End<span" in page

    def test_another_owners_session_is_not_found(self, signed_in, admin_user, fran):
        stranger = make_user(make_owner())
        browser = signed_in_client(stranger)
        browser.get("/")
        row = UserSession.objects.get(user=stranger)
        url = reverse("security:user_sessions", args=[fran.pk])
        assert signed_in(admin_user).post(url, {"session": row.pk}).status_code == 404
        assert browser.get("/").status_code == 200


def hash_key(client) -> str:
    from security.services import hash_session_key

    return hash_session_key(client.session.session_key)


@pytest.mark.django_db
class TestEndAllSessions:
    def url(self, user):
        return reverse("security:user_sessions", args=[user.pk])

    def test_access(self, client, signed_in, owner, fran):
        assert client.get(self.url(fran)).status_code == 302
        reader = make_user(owner, grants={"users": "read"})
        assert signed_in(reader).get(self.url(fran)).status_code == 403

    def test_administrator_ends_every_session_with_audit(self, signed_in, admin_user, fran):
        browser = signed_in_client(fran)
        browser.get("/")
        admin = signed_in(admin_user)
        assert admin.get(self.url(fran)).status_code == 200
        response = admin.post(self.url(fran), {"reason": "Laptop stolen"})
        assert response.status_code == 302
        assert browser.get("/").status_code == 302
        event = AuditEvent.objects.get(action="sessions_ended")
        assert event.actor_id == admin_user.pk and event.subject_user_id == fran.pk
        assert event.reason == "Laptop stolen" and event.context["count"] == 1

    def test_another_owners_user_is_not_found(self, signed_in, admin_user):
        stranger = make_user(make_owner())
        assert signed_in(admin_user).get(self.url(stranger)).status_code == 404


@pytest.mark.django_db
class TestSessionTracking:
    """The tracking row is read only when the user's session epoch moved."""

    def queries(self, client):
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        with CaptureQueriesContext(connection) as captured:
            assert client.get("/").status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    def test_an_ordinary_request_reads_no_tracking_row(self, fran):
        client = signed_in_client(fran)
        client.get("/")
        assert not any("security_usersession" in sql for sql in self.queries(client))

    def test_last_seen_is_written_once_a_minute(self, fran):
        client = signed_in_client(fran)
        client.get("/")
        row = UserSession.objects.get(user=fran)
        with clock(later(minutes=2)):
            sql = self.queries(client)
        assert any(sql_.startswith('UPDATE "security_usersession"') for sql_ in sql)
        assert UserSession.objects.get(pk=row.pk).last_seen_at > row.last_seen_at

    def test_ending_one_session_reads_the_rows_once_then_no_more(self, fran):
        from security import services

        laptop, phone = signed_in_client(fran), signed_in_client(fran)
        laptop.get("/")
        phone.get("/")
        row = UserSession.objects.get(key_hash=services.hash_session_key(phone.session.session_key))
        services.end_session(row, actor=fran, reason="Lost phone")
        assert phone.get("/").status_code == 302
        assert any("security_usersession" in sql for sql in self.queries(laptop))
        assert not any("security_usersession" in sql for sql in self.queries(laptop))

    def test_a_session_signed_in_but_not_yet_seen_is_ended_with_the_others(
        self, signed_in, admin_user, fran
    ):
        unseen = signed_in_client(fran)  # signed in, no request yet: no tracking row
        admin = signed_in(admin_user)
        response = admin.post(
            reverse("security:user_sessions", args=[fran.pk]), {"reason": "Laptop stolen"}
        )
        assert response.status_code == 302
        assert unseen.get("/").status_code == 302
        assert signed_in_client(fran).get("/").status_code == 200  # a new sign-in is fine

    def test_a_rotated_key_is_written_to_the_row(self, fran):
        from security.services import hash_session_key

        client = signed_in_client(fran)
        client.get("/")
        bump_user(fran)
        client.get("/")
        key = client.session.session_key
        assert UserSession.objects.get(user=fran).key_hash == hash_session_key(key)
