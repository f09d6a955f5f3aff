"""SSO sign-in with a real, signing IdP (pysaml2's Server): JIT, group mapping, refusals.

Every refusal shows the person the same generic page (403) and records the precise reason.
"""

import contextlib
import datetime
import time
from unittest import mock

import pytest
from django.test import Client
from saml2 import xmldsig

from accounts.models import User
from audit.models import AuditEvent
from sso.models import SamlAssertionId, SamlGroupMapping, SsoIdentity
from tests.builders import make_owner, make_role, make_role_group, make_user
from tests.sso.conftest import (
    make_provider,
    post_response,
    sign_in,
    start_sign_in,
)
from tests.sso.idp import (
    ENTRA_CLAIMS,
    ENTRA_GROUPS,
    OTHER_SP_ACS,
    OTHER_SP_ENTITY_ID,
    TestIdp,
    decode,
    encode,
)

pytestmark = pytest.mark.django_db

GENERIC = "We could not sign you in with your organisation's identity provider."
OKTA_FRAN = {
    "email": "fran@acme.test",
    "firstName": "Fran",
    "lastName": "Finance",
    "groups": ["billing-clerks", "Everyone"],
}


@contextlib.contextmanager
def idp_clock(shift: datetime.timedelta):
    """Run the test IdP `shift` away from now (pysaml2 reads both time.gmtime and datetime)."""
    seconds = shift.total_seconds()
    real_gmtime, real_time = time.gmtime, time.time

    class Shifted(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime.now(tz) + shift

    with (
        mock.patch(
            "time.gmtime", lambda t=None: real_gmtime(real_time() + seconds if t is None else t)
        ),
        mock.patch("time.time", lambda: real_time() + seconds),
        mock.patch("saml2.time_util.datetime", Shifted),
    ):
        yield


def last_event():
    return AuditEvent.objects.order_by("-id").first()


def assert_refused(client, response, reason, action="sso_refused"):
    assert response.status_code == 403
    assert GENERIC in response.content.decode()
    assert "_auth_user_id" not in client.session
    event = last_event()
    assert (event.action, event.context["reason"], event.method) == (action, reason, "saml")
    return event


@pytest.fixture
def clerk_setup(owner, provider):
    """Mappings: billing-clerks → role Clerk; auditors → extra group Audit readers."""
    clerk = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"users": "read"})])
    audit_readers = make_role_group(owner, "Audit readers", grants={"user_activity": "read"})
    SamlGroupMapping.objects.create(provider=provider, idp_group="billing-clerks", role=clerk)
    mapping = SamlGroupMapping.objects.create(provider=provider, idp_group="auditors")
    mapping.role_groups.set([audit_readers])
    return clerk, audit_readers


class TestSignIn:
    def test_jit_sign_in_creates_the_user_with_the_mapped_role(
        self, client, owner, idp, provider, clerk_setup
    ):
        clerk, _ = clerk_setup
        response = sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)

        assert response.status_code == 302, response.content.decode()[:2000]
        assert response.headers["Location"] == "/"
        user = User.objects.get(username="00u1fran")
        assert user.owner == owner
        assert (user.auth_source, user.kind) == ("saml", "interactive")
        assert not user.has_usable_password()
        assert user.role == clerk
        assert list(user.extra_role_groups.all()) == []
        assert (user.email, user.first_name, user.last_name) == (
            "fran@acme.test",
            "Fran",
            "Finance",
        )
        assert SsoIdentity.objects.get(provider=provider, name_id="00u1fran").user == user
        assert int(client.session["_auth_user_id"]) == user.pk
        event = last_event()
        assert (event.action, event.method, event.actor_id) == ("sign_in", "saml", user.pk)
        created = AuditEvent.objects.get(action="user_created", target_id=str(user.pk))
        assert created.changes["role"] == [None, "Clerk"]
        assert created.owner_id == owner.pk

    def test_later_sign_in_with_other_groups_changes_the_role_groups(
        self, client, owner, idp, provider, clerk_setup
    ):
        clerk, audit_readers = clerk_setup
        fran = {**OKTA_FRAN, "groups": ["billing-clerks", "auditors"]}
        sign_in(client, idp, provider, "00u1fran", fran)
        user = User.objects.get(username="00u1fran")
        assert list(user.extra_role_groups.all()) == [audit_readers]
        version = user.permissions_version

        client.post("/sign-out/")
        fran = {**OKTA_FRAN, "lastName": "Audit", "groups": ["billing-clerks"]}
        response = sign_in(client, idp, provider, "00u1fran", fran)

        assert response.status_code == 302
        user.refresh_from_db()
        assert list(user.extra_role_groups.all()) == []
        assert user.role == clerk
        assert user.last_name == "Audit"
        assert user.permissions_version > version
        changed = AuditEvent.objects.filter(action="user_changed", target_id=str(user.pk)).get()
        assert changed.changes["extra_role_groups"] == [["Audit readers"], []]
        assert changed.changes["last_name"] == ["Finance", "Audit"]
        assert changed.actor_label == f"SSO: {provider.name}"
        assert changed.context["source"] == "saml"  # the same writer as every other door
        created = AuditEvent.objects.get(action="user_created", target_id=str(user.pk))
        assert (created.context["source"], created.method) == ("saml", "saml")

    def test_leaving_every_mapped_group_falls_back_to_the_default_role(
        self, client, owner, idp, provider, clerk_setup
    ):
        viewer = make_role(owner, "Viewer")
        provider.default_role = viewer
        provider.save()
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        assert User.objects.get(username="00u1fran").role.name == "Clerk"
        client.post("/sign-out/")
        sign_in(client, idp, provider, "00u1fran", {**OKTA_FRAN, "groups": ["Everyone"]})
        assert User.objects.get(username="00u1fran").role == viewer

    def test_unchanged_sign_in_does_not_bump_permissions(self, client, idp, provider, clerk_setup):
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        version = User.objects.get(username="00u1fran").permissions_version
        client.post("/sign-out/")
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        assert User.objects.get(username="00u1fran").permissions_version == version
        assert not AuditEvent.objects.filter(action="user_changed").exists()

    def test_next_on_this_site_is_kept(self, client, idp, provider):
        response = sign_in(client, idp, provider, "00u1fran", OKTA_FRAN, next_path="/me/access/")
        assert response.headers["Location"] == "/me/access/"

    def test_relay_state_to_another_site_is_not_followed(self, client, idp, provider):
        saml_request, _ = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        saml_response = idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        response = post_response(client, saml_response, "https://evil.example/phish")
        assert response.status_code == 302
        assert response.headers["Location"] == "/"

    def test_next_to_another_site_is_not_sent_to_the_idp(self, client, provider):
        _, relay_state = start_sign_in(client, provider, "https://evil.example/phish")
        assert relay_state == "/"


class TestEntraAndOktaPresets:
    def test_entra_shaped_assertion_maps_claims_and_group_object_ids(self, client, owner, idp):
        provider = make_provider(owner, idp, preset="entra")
        finance = make_role(owner, "Finance")
        group_id = "6f1d8c3e-52a4-4d4b-9a43-0a7c1b2e3f40"
        SamlGroupMapping.objects.create(provider=provider, idp_group=group_id, role=finance)
        claims = {
            ENTRA_CLAIMS + "name": "fran@contoso.test",
            ENTRA_CLAIMS + "emailaddress": "fran@contoso.test",
            ENTRA_CLAIMS + "givenname": "Fran",
            ENTRA_CLAIMS + "surname": "Finance",
            ENTRA_GROUPS: [group_id, "0b7e-unmapped"],
        }
        response = sign_in(client, idp, provider, "AAAAAAAAAAAAAAAAAAAAAPn3q-pairwise", claims)
        assert response.status_code == 302
        user = User.objects.get(username="fran@contoso.test")
        assert (user.email, user.first_name, user.last_name) == (
            "fran@contoso.test",
            "Fran",
            "Finance",
        )
        assert user.role == finance

    def test_entra_groups_overage_is_refused_rather_than_dropping_every_role(
        self, client, owner, idp
    ):
        provider = make_provider(owner, idp, preset="entra")
        claims = {
            ENTRA_CLAIMS + "name": "fran@contoso.test",
            ENTRA_CLAIMS + "emailaddress": "fran@contoso.test",
            "http://schemas.microsoft.com/claims/groups.link": "https://graph.microsoft.com/v1.0/",
        }
        response = sign_in(client, idp, provider, "AAAApairwise", claims)
        assert_refused(client, response, "groups_overage")

    def test_okta_shaped_assertion_maps_names_and_groups(self, client, owner, idp, provider):
        readers = make_role_group(owner, "Readers", grants={"users": "read"})
        mapping = SamlGroupMapping.objects.create(provider=provider, idp_group="Everyone")
        mapping.role_groups.set([readers])
        response = sign_in(client, idp, provider, "fran@acme.test", OKTA_FRAN)
        assert response.status_code == 302
        user = User.objects.get(username="fran@acme.test")
        assert (user.first_name, user.last_name) == ("Fran", "Finance")
        assert list(user.extra_role_groups.all()) == [readers]


class TestPeopleRefused:
    def test_a_user_without_the_login_flag_is_refused(self, client, idp, provider):
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        client.post("/sign-out/")
        User.objects.filter(username="00u1fran").update(allow_login=False)
        response = sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        event = assert_refused(client, response, "login_disabled", action="sign_in_failed")
        assert event.subject_user_id == User.objects.get(username="00u1fran").pk

    def test_unknown_person_is_refused_when_provisioning_is_off(self, client, owner, idp):
        provider = make_provider(owner, idp, jit_provisioning=False)
        response = sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        event = assert_refused(client, response, "unknown_user", action="sign_in_failed")
        assert event.owner_id == owner.pk
        assert not User.objects.filter(username="00u1fran").exists()

    def test_another_owners_user_with_the_same_email_is_never_signed_into(
        self, client, owner, idp, provider
    ):
        other = make_owner("Globex")
        victim = make_user(other, username="fran-globex", email="fran@acme.test")
        response = sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        assert_refused(client, response, "email_taken", action="sign_in_failed")
        victim.refresh_from_db()
        assert victim.owner == other and victim.auth_source == "local"
        assert not SsoIdentity.objects.exists()

    def test_the_same_name_id_at_another_owners_provider_is_another_person(
        self, client, owner, idp, provider
    ):
        other = make_owner("Globex")
        other_provider = make_provider(other, idp, name="Globex Okta", slug="globex")
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        client.post("/sign-out/")
        response = sign_in(
            client,
            idp,
            other_provider,
            "00u1fran",
            {**OKTA_FRAN, "email": "fran@globex.test", "groups": []},
        )
        # Globex's provider never resolves to Acme's user; the login is taken, so it refuses.
        assert_refused(client, response, "username_taken", action="sign_in_failed")
        assert User.objects.filter(username="00u1fran").get().owner == owner


class TestMessagesRefused:
    def test_unsigned_assertion(self, client, idp, provider):
        response = sign_in(
            client, idp, provider, "00u1fran", OKTA_FRAN, sign_response=False, sign_assertion=False
        )
        assert_refused(client, response, "bad_signature")

    def test_only_the_response_signed_is_not_enough(self, client, idp, provider):
        response = sign_in(
            client, idp, provider, "00u1fran", OKTA_FRAN, sign_response=True, sign_assertion=False
        )
        assert_refused(client, response, "bad_signature")

    def test_assertion_signed_by_another_key(self, client, idp, provider):
        impostor = TestIdp(idp.entity_id, keys="other-idp")
        saml_request, relay = start_sign_in(client, provider)
        request = impostor.parse_request(saml_request)
        saml_response = impostor.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        assert_refused(client, post_response(client, saml_response, relay), "bad_signature")

    def test_attribute_tampered_after_signing(self, client, owner, idp, provider, clerk_setup):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        signed = decode(idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id))
        assert ">Everyone<" in signed
        tampered = encode(signed.replace(">Everyone<", ">billing-admins<"))
        assert_refused(client, post_response(client, tampered, relay), "bad_signature")
        assert not User.objects.exists() or not User.objects.filter(username="00u1fran").exists()

    def test_sha1_signature_is_refused(self, client, idp, provider):
        response = sign_in(
            client,
            idp,
            provider,
            "00u1fran",
            OKTA_FRAN,
            sign_alg=xmldsig.SIG_RSA_SHA1,
            digest_alg=xmldsig.DIGEST_SHA1,
        )
        assert_refused(client, response, "weak_algorithm")

    def test_replay_of_the_same_response(self, client, idp, provider):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        saml_response = idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        assert post_response(client, saml_response, relay).status_code == 302
        client.post("/sign-out/")
        response = post_response(client, saml_response, relay)
        event = assert_refused(client, response, "replayed")
        assert event.reason == "Assertion already used (replay)"
        assert event.owner_id == provider.owner_id

    def test_replay_from_another_browser(self, client, idp, provider):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        saml_response = idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        assert post_response(client, saml_response, relay).status_code == 302
        attacker = Client()
        assert_refused(attacker, post_response(attacker, saml_response, relay), "replayed")

    def test_replay_is_refused_even_when_idp_initiated_sign_in_is_allowed(
        self, client, owner, idp, provider
    ):
        provider.allow_idp_initiated = True
        provider.save()
        saml_response = idp.response("00u1fran", OKTA_FRAN)
        assert post_response(client, saml_response).status_code == 302
        assert SamlAssertionId.objects.count() == 1
        client.post("/sign-out/")
        assert_refused(client, post_response(client, saml_response), "replayed")

    def test_wrong_audience(self, client, idp, provider):
        response = sign_in(
            client, idp, provider, "00u1fran", OKTA_FRAN, audience=OTHER_SP_ENTITY_ID
        )
        assert_refused(client, response, "wrong_audience")

    def test_response_for_another_sp(self, client, idp, provider):
        response = sign_in(
            client,
            idp,
            provider,
            "00u1fran",
            OKTA_FRAN,
            destination=OTHER_SP_ACS,
            audience=OTHER_SP_ENTITY_ID,
        )
        event = assert_refused(client, response, "wrong_destination")
        assert event.owner_id == provider.owner_id

    def test_expired_not_on_or_after(self, client, idp, provider):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        saml_response = idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        later = time.time() + 3600
        with mock.patch("saml2.time_util.utc_now", return_value=later):
            response = post_response(client, saml_response, relay)
        assert_refused(client, response, "expired")

    @pytest.mark.parametrize("days", [-2, 2])
    def test_a_response_issued_days_away_is_recorded_as_expired(self, client, idp, provider, days):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        with idp_clock(datetime.timedelta(days=days)):
            saml_response = idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        event = assert_refused(client, post_response(client, saml_response, relay), "expired")
        assert event.reason == "Assertion expired or not yet valid"

    def test_an_unsigned_old_response_is_still_a_bad_signature(self, client, idp, provider):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        with idp_clock(datetime.timedelta(days=-2)):
            saml_response = idp.response(
                "00u1fran",
                OKTA_FRAN,
                in_response_to=request.id,
                sign_response=False,
                sign_assertion=False,
            )
        response = post_response(client, saml_response, relay)
        assert response.status_code == 403
        assert last_event().context["reason"] in {"bad_signature", "expired"}

    def test_xml_with_an_external_entity(self, client, idp, provider):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        xml = decode(idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id))
        evil = xml.replace(
            '<?xml version="1.0"?>',
            '<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>',
        ).replace(">Fran<", ">&x;<")
        assert_refused(client, post_response(client, encode(evil), relay), "unsafe_xml")

    def test_unsolicited_response_when_idp_initiated_is_off(self, client, idp, provider):
        response = post_response(client, idp.response("00u1fran", OKTA_FRAN))
        assert_refused(client, response, "unsolicited")

    def test_idp_initiated_sign_in_when_allowed(self, client, idp, provider):
        provider.allow_idp_initiated = True
        provider.save()
        response = post_response(client, idp.response("00u1fran", OKTA_FRAN))
        assert response.status_code == 302
        assert User.objects.filter(username="00u1fran").exists()

    def test_unknown_idp(self, client, other_idp, provider):
        response = post_response(client, other_idp.response("00u1fran", OKTA_FRAN))
        event = assert_refused(client, response, "unknown_idp")
        assert event.owner_id is None

    def test_disabled_provider(self, client, idp, provider):
        saml_request, relay = start_sign_in(client, provider)
        request = idp.parse_request(saml_request)
        provider.enabled = False
        provider.save()
        saml_response = idp.response("00u1fran", OKTA_FRAN, in_response_to=request.id)
        assert_refused(client, post_response(client, saml_response, relay), "disabled_idp")

    def test_garbage(self, client, provider):
        assert_refused(client, post_response(client, "not base64 at all!"), "malformed_response")
        assert_refused(client, client.post("/saml2/acs/", {}), "malformed_response")

    def test_sign_in_page_for_a_disabled_or_unknown_provider(self, client, provider):
        provider.enabled = False
        provider.save()
        assert client.get(f"/saml2/login/?idp={provider.pk}").status_code == 404
        assert client.get("/saml2/login/?idp=nope").status_code == 404


class TestPasswordsAndSignOut:
    def test_an_sso_user_cannot_sign_in_with_a_password(self, client, idp, provider):
        from tests.builders import PASSWORD

        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        client.post("/sign-out/")
        response = client.post("/sign-in/", {"login": "00u1fran", "password": PASSWORD})
        assert response.status_code == 400
        assert last_event().context["reason"] == "sso_managed"

    def test_portal_sign_out_ends_the_local_session(self, client, idp, provider):
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        response = client.post("/saml2/logout/")
        assert response.status_code == 302
        assert response.headers["Location"] == "/sign-in/"
        assert "_auth_user_id" not in client.session
        assert last_event().action == "sign_out"

    @pytest.fixture
    def slo_idp(self, client, owner):
        """An identity provider with single logout, Fran signed in through it."""
        idp = TestIdp(
            "https://slo.example.test/metadata",
            base_url="https://slo.example.test",
            with_logout=True,
        )
        provider = make_provider(owner, idp, name="SLO IdP", slug="slo")
        sign_in(client, idp, provider, "00u1fran", OKTA_FRAN)
        return idp

    def test_single_logout_at_an_idp_that_supports_it(self, client, slo_idp):
        response = client.post("/saml2/logout/")
        assert "_auth_user_id" not in client.session
        assert last_event().action == "sign_out"
        location = response.headers["Location"]
        assert location.startswith("https://slo.example.test/slo?SAMLRequest=")
        assert "Signature=" in location

    def test_a_bare_or_unsigned_logout_request_changes_nothing(self, client, slo_idp):
        assert client.get("/saml2/ls/").status_code == 302
        forged = logout_request(slo_idp, "00u1fran", sign=False)
        assert client.get(forged).status_code == 302
        assert "_auth_user_id" in client.session
        impostor = TestIdp(
            slo_idp.entity_id,
            base_url="https://slo.example.test",
            keys="other-idp",
            with_logout=True,
        )
        client.get(logout_request(impostor, "00u1fran"))
        assert "_auth_user_id" in client.session

    def test_a_signed_logout_request_from_the_idp_ends_the_session(self, client, slo_idp):
        other = logout_request(slo_idp, "00u1someone-else")
        client.get(other)
        assert "_auth_user_id" in client.session
        response = client.get(logout_request(slo_idp, "00u1fran"))
        assert "_auth_user_id" not in client.session
        assert last_event().action == "sign_out"
        assert response.headers["Location"].startswith("https://slo.example.test/slo?SAMLResponse=")


def logout_request(idp, name_id, *, sign=True):
    """Return the portal URL (path and query) of the IdP's LogoutRequest for `name_id`."""
    from urllib.parse import urlsplit

    from saml2 import BINDING_HTTP_REDIRECT, saml

    from sso import config as saml_config

    destination = saml_config.public_url("/saml2/ls/")
    _, request = idp.server.create_logout_request(
        destination,
        saml_config.sp_entity_id(),
        name_id=saml.NameID(format=saml.NAMEID_FORMAT_PERSISTENT, text=name_id),
        sign=False,
    )
    info = idp.server.apply_binding(
        BINDING_HTTP_REDIRECT,
        str(request),
        destination,
        sign=sign,
        sigalg=xmldsig.SIG_RSA_SHA256 if sign else None,
    )
    location = dict(info["headers"])["Location"]
    parts = urlsplit(location)
    return f"{parts.path}?{parts.query}"
