"""The password policy screen: who may see and change it, step-up, floors, audit, concurrency."""

import pytest
from django.urls import reverse

from audit.models import AuditEvent
from security import guidance
from security.models import PasswordPolicy
from tests.builders import PASSWORD, make_owner, make_user

from .conftest import give_proof, set_policy

URL = reverse("security:policy")


def form_data(**changes):
    data = {
        "min_length": 15,
        "allowed_characters": "",
        "history_depth": 0,
        "expiry_days": 0,
        "lockout_threshold": 10,
        "lockout_minutes": 15,
        "idle_timeout_minutes": 30,
        "absolute_timeout_hours": 12,
        "max_token_days": 365,
        "notify_new_sign_in": "on",  # the one setting on by default
        "row_version": 1,
        "reason": "Audit finding 12",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not False}


@pytest.fixture
def reader(owner):
    return make_user(owner, username="reader", grants={"parameters": "read"})


@pytest.fixture
def changer(owner):
    return make_user(owner, username="changer", grants={"parameters": "full"})


@pytest.mark.django_db
class TestAccess:
    def test_anonymous_is_sent_to_sign_in(self, client):
        response = client.get(URL)
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/sign-in/")

    def test_without_parameters_is_refused(self, signed_in, owner):
        client = signed_in(make_user(owner, grants={"users": "full"}))
        assert client.get(URL).status_code == 403

    def test_read_level_sees_but_cannot_change(self, signed_in, reader):
        client = signed_in(reader)
        response = client.get(URL)
        assert response.status_code == 200
        page = response.content.decode()
        assert "Save policy" not in page
        assert "changing it needs full access" in page
        assert client.post(URL, form_data(min_length=20)).status_code == 403
        assert not PasswordPolicy.objects.exists()

    def test_full_level_is_asked_to_confirm_first(self, signed_in, changer):
        client = signed_in(changer)
        response = client.get(URL)
        assert response.status_code == 302
        assert response.headers["Location"] == (
            reverse("security:reauthenticate") + "?next=%2Fsettings%2Fpassword-policy%2F"
        )
        give_proof(client)
        response = client.get(URL)
        assert response.status_code == 200
        assert "Save policy" in response.content.decode()


@pytest.mark.django_db
class TestChange:
    def test_change_is_saved_and_audited_with_before_and_after(self, signed_in, owner, changer):
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=20, expiry_days=90))
        assert response.status_code == 302
        policy = PasswordPolicy.objects.get(owner=owner)
        assert (policy.min_length, policy.expiry_days, policy.row_version) == (20, 90, 2)
        event = AuditEvent.objects.get(action="policy_changed")
        assert event.changes == {"expiry_days": [0, 90], "min_length": [15, 20]}
        assert event.actor_id == changer.pk and event.owner_id == owner.pk
        assert event.reason == "Audit finding 12"

    def test_a_change_without_a_reason_is_refused_beside_the_field(self, signed_in, owner, changer):
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=20, reason=""))
        assert response.status_code == 400
        assert "Say why the policy changes" in response.content.decode()
        assert not AuditEvent.objects.filter(action="policy_changed").exists()
        assert not PasswordPolicy.objects.filter(owner=owner, min_length=20).exists()

    def test_minimum_below_15_without_2fa_is_refused(self, signed_in, owner, changer):
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=12))
        assert response.status_code == 400
        assert "Without two-factor authentication the minimum length cannot be below 15" in (
            response.content.decode()
        )
        assert not AuditEvent.objects.filter(action="policy_changed").exists()

    def test_minimum_of_8_with_2fa_and_never_below(self, signed_in, owner, changer):
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=7, require_2fa="on"))
        assert response.status_code == 400
        assert "Ensure this value is greater than or equal to 8." in response.content.decode()
        confirmed = {"require_2fa_warned": "True", "confirm_require_2fa": "on"}
        response = client.post(URL, form_data(min_length=8, require_2fa="on", **confirmed))
        assert response.status_code == 302
        assert PasswordPolicy.objects.get(owner=owner).min_length == 8

    def test_a_stale_edit_is_refused(self, signed_in, owner, changer):
        set_policy(owner, row_version=3)
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=20, row_version=2))
        assert response.status_code == 400
        assert "Someone else changed this in the meantime" in response.content.decode()
        assert not PasswordPolicy.objects.filter(owner=owner, min_length=20).exists()

    def test_guidance_is_shown_beside_rules_that_are_on(self, signed_in, owner, changer):
        client = give_proof(signed_in(changer))
        page = client.get(URL).content.decode()
        assert 'data-guidance="expiry_days" hidden' in page
        set_policy(owner, expiry_days=60, require_digit=True)
        page = client.get(URL).content.decode()
        assert 'data-guidance="expiry_days">' in page
        assert 'data-guidance="require_upper require_lower require_digit require_symbol">' in page
        assert guidance.EXPIRY[:40] in page
        assert 'data-guidance="history_depth" hidden' in page

    def test_change_applies_to_this_owner_only(self, signed_in, owner, changer):
        other = make_owner()
        client = give_proof(signed_in(changer))
        client.post(URL, form_data(min_length=25))
        assert not PasswordPolicy.objects.filter(owner=other).exists()
        assert PasswordPolicy.objects.get(owner=owner).min_length == 25

    def test_a_stale_proof_sends_the_change_to_confirmation(self, signed_in, owner, changer):
        import datetime

        from django.utils import timezone

        client = give_proof(signed_in(changer), timezone.now() - datetime.timedelta(minutes=6))
        response = client.post(
            URL, form_data(min_length=20), HTTP_REFERER="http://testserver" + URL
        )
        assert response.status_code == 302
        assert response.headers["Location"].startswith(reverse("security:reauthenticate"))
        assert not PasswordPolicy.objects.exists()


@pytest.mark.django_db
class TestReauthenticate:
    REAUTH = reverse("security:reauthenticate")

    def test_wrong_password_is_refused_then_the_right_one_returns_to_the_action(
        self, signed_in, changer
    ):
        client = signed_in(changer)
        response = client.post(self.REAUTH, {"password": "not it", "next": URL})
        assert response.status_code == 400
        assert "That did not match" in response.content.decode()
        assert not AuditEvent.objects.filter(action="step_up").exists()
        response = client.post(self.REAUTH, {"password": PASSWORD, "next": URL})
        assert response.status_code == 302
        assert response.headers["Location"] == URL
        assert AuditEvent.objects.filter(action="step_up", actor_id=changer.pk).exists()
        assert client.get(URL).status_code == 200

    def test_anonymous_is_sent_to_sign_in(self, client):
        assert client.get(self.REAUTH).status_code == 302


@pytest.mark.django_db
class TestRequireTwoFactor:
    """Turning on required two-factor says whom it sends to set-up; it saves once confirmed."""

    @pytest.fixture
    def people(self, owner):
        from tests.builders import make_api_user, make_totp_device
        from tests.passkeys.conftest import enrol

        make_user(owner, username="no-factor-1")
        make_user(owner, username="no-factor-2")
        make_totp_device(make_user(owner, username="has-app"))
        enrol(make_user(owner, username="has-passkey"))
        make_totp_device(make_user(owner, username="unconfirmed-app"), confirmed=False)
        make_user(owner, username="sso", auth_source="saml")
        make_user(owner, username="gone", allow_login=False)
        make_api_user(owner, api_grants={"api_users": "read"}, username="robot")
        make_user(make_owner(), username="elsewhere")

    def test_enrolment_impact_counts_in_one_query(
        self, owner, changer, people, django_assert_num_queries
    ):
        from accounts.twofactor import services as twofactor

        with django_assert_num_queries(1):
            impact = twofactor.enrolment_impact(owner, changer)
        # no-factor-1, no-factor-2, unconfirmed-app and the administrator (changer) themselves
        assert (impact.people, impact.includes_actor) == (4, True)

    def test_first_save_warns_and_saves_nothing(self, signed_in, owner, changer, people):
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=20, require_2fa="on"))
        assert response.status_code == 200
        page = response.content.decode()
        assert "Nothing is saved yet" in page
        assert "<strong>4 active people</strong>" in page
        assert "You are one of them:" in page
        assert "Save and require two-factor sign-in" in page
        assert 'name="require_2fa_warned"' in page
        assert not PasswordPolicy.objects.exists()
        assert not AuditEvent.objects.filter(action="policy_changed").exists()

    def test_an_enrolled_administrator_is_told_they_carry_on(self, signed_in, owner, changer):
        from tests.builders import make_totp_device

        make_totp_device(changer)
        client = give_proof(signed_in(changer))
        page = client.post(URL, form_data(require_2fa="on")).content.decode()
        assert "You already have a second factor" in page
        assert "already has an authenticator app or a passkey: nobody is sent" in page

    def test_confirming_without_the_tick_is_refused_next_to_it(self, signed_in, owner, changer):
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(require_2fa="on", require_2fa_warned="True"))
        assert response.status_code == 400
        assert "Tick this to require two-factor sign-in" in response.content.decode()
        assert not PasswordPolicy.objects.exists()

    def test_the_confirmed_second_post_saves_and_sends_them_to_set_up(
        self, signed_in, owner, changer
    ):
        client = give_proof(signed_in(changer))
        data = form_data(
            min_length=20, require_2fa="on", require_2fa_warned="True", confirm_require_2fa="on"
        )
        response = client.post(URL, data)
        assert response.status_code == 302
        policy = PasswordPolicy.objects.get(owner=owner)
        assert (policy.require_2fa, policy.min_length) == (True, 20)
        event = AuditEvent.objects.get(action="policy_changed")
        assert event.changes["require_2fa"] == [False, True]
        assert client.get("/").headers["Location"] == reverse("twofactor:enrol")

    def test_saving_other_rules_while_already_required_asks_nothing(
        self, signed_in, owner, changer
    ):
        set_policy(owner, require_2fa=True)
        from tests.builders import make_totp_device

        make_totp_device(changer)
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data(min_length=20, require_2fa="on"))
        assert response.status_code == 302
        assert PasswordPolicy.objects.get(owner=owner).min_length == 20

    def test_turning_it_off_asks_nothing(self, signed_in, owner, changer):
        set_policy(owner, require_2fa=True)
        from tests.builders import make_totp_device

        make_totp_device(changer)
        client = give_proof(signed_in(changer))
        response = client.post(URL, form_data())
        assert response.status_code == 302
        assert PasswordPolicy.objects.get(owner=owner).require_2fa is False
