"""Sign-in with a second step, the person's own screens, the require-2FA gate and admin reset."""

import re

import pyotp
import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from accounts.twofactor import services as twofactor
from audit.models import AuditEvent
from roles import catalog
from security.models import PasswordPolicy
from tests.access_helpers import assert_screen_access
from tests.builders import PASSWORD, make_owner, make_totp_device, make_user

pytestmark = pytest.mark.django_db


def sign_in(client, login, password=PASSWORD):
    return client.post("/sign-in/", {"login": login, "password": password})


class TestSignInWithSecondStep:
    def test_password_alone_does_not_sign_in_a_user_with_a_device(self, client, owner, clock):
        user = make_user(owner, username="tess")
        make_totp_device(user)
        response = sign_in(client, "tess")
        assert response.status_code == 302 and response.url == "/sign-in/verify/"
        assert SESSION_KEY not in client.session
        assert client.get("/").status_code == 302  # still anonymous
        assert not AuditEvent.objects.filter(action="sign_in").exists()

    def test_code_completes_the_sign_in(self, client, owner, clock):
        user = make_user(owner, username="tess")
        _, totp = make_totp_device(user)
        sign_in(client, "tess")
        pending_key = client.session.session_key
        response = client.post("/sign-in/verify/", {"code": "000000"})
        assert response.status_code == 400
        assert "That code did not work" in response.content.decode()
        clock.advance(seconds=2)
        response = client.post("/sign-in/verify/", {"code": totp.at(clock.epoch)})
        assert response.status_code == 302 and response.url == "/"
        assert client.session[SESSION_KEY] == str(user.pk)
        assert client.session.session_key != pending_key
        event = AuditEvent.objects.filter(action="sign_in").get()
        assert event.method == "password+totp"
        assert event.context == {"second_factor": "totp"}
        assert client.get("/").status_code == 200

    def test_backup_code_completes_the_sign_in_once(self, client, owner, clock):
        user = make_user(owner, username="tess")
        make_totp_device(user)
        codes = twofactor.regenerate_backup_codes(user, actor=user)
        sign_in(client, "tess")
        response = client.post("/sign-in/verify/", {"code": codes[0]})
        assert response.status_code == 302
        assert AuditEvent.objects.get(action="sign_in").method == "password+backup_code"
        client.post("/sign-out/")
        sign_in(client, "tess")
        response = client.post("/sign-in/verify/", {"code": codes[0]})
        assert response.status_code == 400
        assert SESSION_KEY not in client.session

    def test_pending_state_expires_after_five_minutes(self, client, owner, clock):
        user = make_user(owner, username="tess")
        _, totp = make_totp_device(user)
        sign_in(client, "tess")
        clock.advance(minutes=5, seconds=1)
        response = client.post("/sign-in/verify/", {"code": totp.at(clock.epoch)})
        assert response.status_code == 302 and response.url == "/sign-in/"
        assert SESSION_KEY not in client.session

    def test_verify_without_a_password_step_goes_to_sign_in(self, client, db):
        response = client.get("/sign-in/verify/")
        assert response.status_code == 302 and response.url == "/sign-in/"

    def test_next_is_kept_through_the_second_step(self, client, owner, clock):
        user = make_user(owner, username="tess")
        _, totp = make_totp_device(user)
        client.post("/sign-in/", {"login": "tess", "password": PASSWORD, "next": "/me/access/"})
        response = client.post("/sign-in/verify/", {"code": totp.at(clock.epoch)})
        assert response.url == "/me/access/"

    def test_user_without_device_signs_in_with_password(self, client, owner):
        make_user(owner, username="plain")
        response = sign_in(client, "plain")
        assert response.status_code == 302 and response.url == "/"
        assert AuditEvent.objects.get(action="sign_in").method == "password"


class TestOwnScreens:
    def test_anonymous_goes_to_sign_in(self, client, db):
        urls = ["/me/two-factor/", "/me/two-factor/set-up/", "/me/two-factor/remove/"]
        assert_screen_access(client, urls)

    def test_enrol_page_shows_qr_and_secret_then_backup_codes(self, signed_in, owner, clock):
        user = make_user(owner)
        client = signed_in(user)
        page = client.get("/me/two-factor/set-up/")
        assert page.status_code == 200
        html = page.content.decode()
        assert "<svg" in html and 'class="qr"' in html
        secret = re.search(r'data-secret="([A-Z2-7]+)"', html).group(1)
        assert secret == twofactor.start_enrolment(user).base32_secret
        wrong = client.post("/me/two-factor/set-up/", {"code": "12"})
        assert wrong.status_code == 400
        clock.advance(seconds=2)
        done = client.post("/me/two-factor/set-up/", {"code": pyotp.TOTP(secret).at(clock.epoch)})
        assert done.status_code == 200
        shown = re.findall(r"<li><code>(\w{4}-\w{4}-\w{4})</code>", done.content.decode())
        assert len(shown) == 10
        assert twofactor.has_confirmed_device(user)
        assert client.get("/me/two-factor/set-up/").status_code == 302  # already set up

    def test_manage_page_and_regenerate(self, signed_in, owner):
        user = make_user(owner)
        make_totp_device(user)
        client = signed_in(user)
        page = client.get("/me/two-factor/")
        assert page.status_code == 200 and "Backup codes left" in page.content.decode()
        fresh = client.post("/me/two-factor/backup-codes/")
        assert fresh.status_code == 200
        assert AuditEvent.objects.filter(action="backup_codes_regenerated").count() == 1
        assert client.get("/me/two-factor/backup-codes/").status_code == 405

    def test_remove_with_password(self, signed_in, owner):
        user = make_user(owner)
        make_totp_device(user)
        client = signed_in(user)
        assert client.post("/me/two-factor/remove/", {}).status_code == 400
        assert client.post("/me/two-factor/remove/", {"password": "nope"}).status_code == 400
        response = client.post("/me/two-factor/remove/", {"password": PASSWORD})
        assert response.status_code == 302
        assert not twofactor.has_confirmed_device(user)
        assert AuditEvent.objects.filter(action="totp_removed", subject_user_id=user.pk).exists()


class TestRequireTwoFactorGate:
    @pytest.fixture
    def strict_owner(self, db):
        owner = make_owner()
        PasswordPolicy.objects.create(owner=owner, require_2fa=True)
        return owner

    def test_user_without_device_is_taken_to_enrolment(self, signed_in, strict_owner):
        client = signed_in(make_user(strict_owner))
        for url in ("/", "/me/access/"):
            response = client.get(url)
            assert response.status_code == 302 and response.url == "/me/two-factor/set-up/"
        page = client.get("/me/two-factor/set-up/")
        assert page.status_code == 200 and "requires two-factor" in page.content.decode()
        assert client.post("/sign-out/").status_code == 302

    def test_user_with_device_passes(self, signed_in, strict_owner):
        user = make_user(strict_owner)
        make_totp_device(user)
        assert signed_in(user).get("/").status_code == 200

    def test_enrolling_opens_the_portal(self, signed_in, strict_owner, clock):
        user = make_user(strict_owner)
        client = signed_in(user)
        device = twofactor.start_enrolment(user)
        code = pyotp.TOTP(device.base32_secret).at(clock.epoch)
        client.post("/me/two-factor/set-up/", {"code": code})
        assert client.get("/").status_code == 200

    def test_sso_users_are_left_to_their_identity_provider(self, signed_in, strict_owner):
        user = make_user(strict_owner, auth_source="saml")
        assert signed_in(user).get("/").status_code == 200

    def test_other_owners_are_not_affected(self, signed_in, owner, strict_owner):
        assert signed_in(make_user(owner)).get("/").status_code == 200


class TestAdminReset:
    @pytest.fixture
    def support(self, owner):
        return make_user(owner, grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=8)

    def test_refusals(self, signed_in, owner, support):
        target = make_user(owner, privilege_level=3)
        url = f"/users/{target.pk}/two-factor/reset/"
        reader = make_user(owner, grants={catalog.DP_ACCESS: catalog.READ}, privilege_level=8)
        assert_screen_access(signed_in, [url], allowed=support, denied=reader)
        stranger = make_user(make_owner(), privilege_level=3)
        assert signed_in(support).get(f"/users/{stranger.pk}/two-factor/reset/").status_code == 404
        boss = make_user(owner, privilege_level=9)
        make_totp_device(boss)
        response = signed_in(support).post(
            f"/users/{boss.pk}/two-factor/reset/", {"reason": "ticket 1"}
        )
        assert response.status_code == 400
        assert twofactor.has_confirmed_device(boss)
        assert not AuditEvent.objects.filter(action="totp_reset").exists()

    def test_reason_is_required(self, signed_in, owner, support):
        target = make_user(owner, privilege_level=3)
        make_totp_device(target)
        response = signed_in(support).post(f"/users/{target.pk}/two-factor/reset/", {"reason": ""})
        assert response.status_code == 400
        assert twofactor.has_confirmed_device(target)

    def test_reset_removes_device_audits_and_ends_sessions(self, signed_in, owner, support):
        target = make_user(owner, privilege_level=3)
        make_totp_device(target)
        theirs = Client()
        theirs.force_login(target, backend="accounts.backends.PortalBackend")
        assert theirs.get("/").status_code == 200
        client = signed_in(support)
        assert client.get(f"/users/{target.pk}/two-factor/reset/").status_code == 200
        response = client.post(
            f"/users/{target.pk}/two-factor/reset/", {"reason": "lost phone, ticket 42"}
        )
        assert response.status_code == 302
        assert not twofactor.has_confirmed_device(target)
        event = AuditEvent.objects.get(action="totp_reset")
        assert event.actor_id == support.pk and event.subject_user_id == target.pk
        assert event.reason == "lost phone, ticket 42"
        assert event.context["sessions_ended"] == 1
        assert theirs.get("/").status_code == 302  # their session is gone
        assert client.get("/").status_code == 200  # the actor's is not


def test_gate_costs_no_query(rf, owner, django_assert_num_queries):
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.backends import PortalBackend
    from accounts.twofactor.middleware import TwoFactorEnrolmentMiddleware
    from accounts.views import home

    user = PortalBackend().get_user(make_user(owner).pk)  # as every request loads it
    request = rf.get("/")
    request.user = user
    request.session = SessionStore()
    request.resolver_match = None
    gate = TwoFactorEnrolmentMiddleware(lambda r: None)
    with django_assert_num_queries(0):
        assert gate.process_view(request, home, (), {}) is None


def test_requiring_two_factor_applies_at_the_next_request(client, owner):
    user = make_user(owner)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    assert client.get("/").status_code == 200
    PasswordPolicy.objects.update_or_create(owner=owner, defaults={"require_2fa": True})
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == reverse("twofactor:enrol")


class TestWithSecurityRules:
    def test_wrong_codes_count_towards_the_lockout(self, client, owner, clock):
        from security import lockout

        PasswordPolicy.objects.create(owner=owner, lockout_threshold=3)
        user = make_user(owner, username="tess")
        _, totp = make_totp_device(user)
        sign_in(client, "tess")
        for _ in range(3):
            clock.advance(minutes=1)  # past the device's own throttle
            client.post("/sign-in/verify/", {"code": "000000"})
        assert lockout.is_locked(user)
        assert AuditEvent.objects.filter(action="locked_out").count() == 1
        clock.advance(seconds=30)
        response = client.post("/sign-in/verify/", {"code": totp.at(clock.epoch)})
        assert response.status_code == 400
        assert "sign-in is paused" in response.content.decode()
        assert SESSION_KEY not in client.session

    def test_expired_password_is_changed_after_the_second_step(self, client, owner, clock):
        user = make_user(owner, username="tess", must_change_password=True)
        _, totp = make_totp_device(user)
        sign_in(client, "tess")
        response = client.post("/sign-in/verify/", {"code": totp.at(clock.epoch)})
        assert response.status_code == 302
        assert response.url.startswith("/me/password/?next=")
        assert AuditEvent.objects.filter(action="password_expired").exists()

    def test_support_actions_need_a_recent_proof(self, client, owner, clock):
        support = make_user(owner, grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=8)
        target = make_user(owner, privilege_level=3)
        make_totp_device(target)
        client.force_login(support, backend="accounts.backends.PortalBackend")
        response = client.post(f"/users/{target.pk}/two-factor/reset/", {"reason": "ticket"})
        assert response.status_code == 302 and response.url.startswith("/me/confirm/")
        assert twofactor.has_confirmed_device(target)


def test_step_up_asks_for_the_code_of_the_device(client, owner, clock):
    from portal import stepup

    user = make_user(owner, username="tess")
    _, totp = make_totp_device(user)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    page = client.get("/me/confirm/")
    assert "Code from your authenticator app" in page.content.decode()
    wrong = client.post("/me/confirm/", {"password": PASSWORD, "code": "000000"})
    assert wrong.status_code == 400
    clock.advance(seconds=30)
    right = client.post("/me/confirm/", {"password": PASSWORD, "code": totp.at(clock.epoch)})
    assert right.status_code == 302
    assert stepup.PROOF_AT in client.session


def test_a_wrong_code_at_step_up_is_audited_and_counted_once(client, owner, clock):
    from security.models import AccountLockout

    user = make_user(owner, username="tess")
    make_totp_device(user)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    response = client.post("/me/confirm/", {"password": PASSWORD, "code": "000000"})
    assert response.status_code == 400
    (event,) = AuditEvent.objects.filter(action="totp_failed")
    assert event.context == {"stage": "step_up", "kind": "totp"}
    assert AccountLockout.objects.get(user=user).failures == 1
    assert not AuditEvent.objects.filter(action="step_up").exists()


def test_a_wrong_password_at_step_up_does_not_try_the_code(client, owner, clock):
    from security.models import AccountLockout

    user = make_user(owner, username="tess")
    _, totp = make_totp_device(user)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    response = client.post("/me/confirm/", {"password": "wrong", "code": totp.at(clock.epoch)})
    assert response.status_code == 400
    assert AccountLockout.objects.get(user=user).failures == 1
    assert not AuditEvent.objects.filter(action="totp_failed").exists()
    # The code was not spent: it still works with the right password.
    right = client.post("/me/confirm/", {"password": PASSWORD, "code": totp.at(clock.epoch)})
    assert right.status_code == 302


def test_a_backup_code_at_step_up_is_spent_and_recorded(client, owner, clock):
    user = make_user(owner, username="tess")
    make_totp_device(user)
    codes = twofactor.regenerate_backup_codes(user, actor=user)
    client.force_login(user, backend="accounts.backends.PortalBackend")
    response = client.post("/me/confirm/", {"password": PASSWORD, "code": codes[0]})
    assert response.status_code == 302
    used = AuditEvent.objects.get(action="backup_code_used")
    assert used.context == {"remaining": 9, "stage": "step_up"}
    step_up = AuditEvent.objects.get(action="step_up")
    assert step_up.context == {"second_factor": twofactor.METHOD_BACKUP_CODE}
    again = client.post("/me/confirm/", {"password": PASSWORD, "code": codes[0]})
    assert again.status_code == 400


def test_security_tab_shows_two_factor_state_and_support_links(signed_in, owner):
    target = make_user(owner, privilege_level=3)
    make_totp_device(target)
    twofactor.regenerate_backup_codes(target, actor=target)
    reader = make_user(owner, grants={catalog.USERS: catalog.READ}, privilege_level=8)
    page = signed_in(reader).get(f"/users/{target.pk}/security/").content.decode()
    assert "Two-factor sign-in" in page and "10 of 10" in page
    assert f"/users/{target.pk}/recovery/" not in page
    support = make_user(
        owner,
        grants={catalog.USERS: catalog.READ, catalog.DP_ACCESS: catalog.FULL},
        privilege_level=8,
    )
    page = signed_in(support).get(f"/users/{target.pk}/security/").content.decode()
    assert f"/users/{target.pk}/recovery/" in page
    assert f"/users/{target.pk}/two-factor/reset/" in page


def test_user_record_offers_the_recovery_console_to_support_only(signed_in, owner):
    target = make_user(owner, privilege_level=3)
    reader = make_user(owner, grants={catalog.USERS: catalog.READ}, privilege_level=8)
    link = f'href="/users/{target.pk}/recovery/"'
    assert link not in signed_in(reader).get(f"/users/{target.pk}/").content.decode()
    support = make_user(
        owner,
        grants={catalog.USERS: catalog.READ, catalog.DP_ACCESS: catalog.FULL},
        privilege_level=8,
    )
    assert link in signed_in(support).get(f"/users/{target.pk}/").content.decode()
