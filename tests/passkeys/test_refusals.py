"""Bad input at every passkey door: refused with a plain message, recorded, never a 500.

Each response is a real one from a software authenticator, made wrong in one way: another
user's credential, another origin or RP ID, replayed, cloned (its counter behind), oversized,
malformed; then arbitrary JSON from hypothesis.
"""

import base64
import json

import cbor2
import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audit.models import AuditEvent
from security.models import AccountLockout
from tests.builders import make_totp_device, make_user
from tests.passkeys.authenticator import SoftAuthenticator, b64url
from tests.passkeys.conftest import (
    REGISTER_BEGIN,
    REGISTER_COMPLETE,
    SIGN_IN_BEGIN,
    SIGN_IN_COMPLETE,
    enrol,
    passwordless,
    post_json,
    post_sign_in,
    second_step,
)
from tests.twofactor.conftest import proved_client

pytestmark = pytest.mark.django_db


def last_refusal(action="passkey_refused"):
    return AuditEvent.objects.filter(action=action).latest("seq")


def begin_passwordless(client):
    return post_json(client, SIGN_IN_BEGIN, {"purpose": "passwordless"}).json()


def complete_passwordless(client, credential, url=SIGN_IN_COMPLETE):
    return post_json(client, url, {"purpose": "passwordless", "credential": credential})


@pytest.fixture
def pat(passkey_owner):
    return make_user(passkey_owner, username="pat")


@pytest.fixture
def key(pat):
    return enrol(pat)


def test_a_credential_registered_to_another_user_is_refused(passkey_owner, pat, key):
    bob = make_user(passkey_owner, username="bob")
    client = proved_client(bob)
    options = post_json(client, REGISTER_BEGIN).json()
    response = post_json(client, REGISTER_COMPLETE, {"credential": key.register(options)})
    assert response.status_code == 400
    assert response.json()["error"].startswith("This passkey is already registered here")
    assert bob.webauthncredential_set.count() == 0
    assert pat.webauthncredential_set.count() == 1
    refused = last_refusal()
    assert refused.context["refusal"] == "credential_of_another_user"
    assert refused.context["stage"] == "registration" and refused.subject_user_id == bob.pk


def test_the_second_step_refuses_another_users_passkey(passkey_owner, pat, key):
    bob = make_user(passkey_owner, username="bob")
    make_totp_device(bob)
    client = Client()
    post_sign_in(client, "bob")
    response = second_step(client, key)
    assert response.status_code == 400
    assert response.json()["error"] == "This passkey is not registered to your account."
    assert SESSION_KEY not in client.session
    refused = last_refusal()
    assert refused.subject_user_id == bob.pk
    assert refused.context["refusal"] == "credential_of_another_user"
    assert AccountLockout.objects.get(user=bob).failures == 1  # counted like a wrong code


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        ({"origin": "https://access.example.evil"}, "wrong_origin"),
        ({"rp_id": "example.evil"}, "wrong_rp_id"),
    ],
)
def test_a_response_made_for_another_site_is_refused(pat, key, wrong, reason):
    client = Client()
    response = complete_passwordless(client, key.assertion(begin_passwordless(client), **wrong))
    assert response.status_code == 400
    assert SESSION_KEY not in client.session
    failure = last_refusal("sign_in_failed")
    assert failure.context["refusal"] == reason and failure.subject_user_id == pat.pk
    assert failure.method == "passkey"
    assert AccountLockout.objects.get(user=pat).failures == 1


@pytest.mark.parametrize(
    ("wrong", "reason"),
    [
        ({"origin": "https://access.example.evil"}, "wrong_origin"),
        ({"rp_id": "example.evil"}, "wrong_rp_id"),
    ],
)
def test_a_registration_made_for_another_site_is_refused(pat, wrong, reason):
    client = proved_client(pat)
    options = post_json(client, REGISTER_BEGIN).json()
    response = post_json(
        client, REGISTER_COMPLETE, {"credential": SoftAuthenticator().register(options, **wrong)}
    )
    assert response.status_code == 400
    assert pat.webauthncredential_set.count() == 0
    assert last_refusal().context["refusal"] == reason


def test_a_replayed_assertion_is_refused(pat, key):
    client = Client()
    assertion = key.assertion(begin_passwordless(client))
    assert complete_passwordless(client, assertion).status_code == 200

    # The same response again: its ceremony was used up.
    other = Client()
    response = complete_passwordless(other, assertion)
    assert response.status_code == 400
    assert last_refusal("sign_in_failed").context["refusal"] == "no_ceremony"
    # And against a new ceremony: it answers the old challenge.
    begin_passwordless(other)
    response = complete_passwordless(other, assertion)
    assert response.status_code == 400
    assert SESSION_KEY not in other.session
    assert last_refusal("sign_in_failed").context["refusal"] == "challenge_mismatch"


def test_a_cloned_authenticator_is_refused_by_its_sign_counter(pat, key):
    assert passwordless(Client(), key).status_code == 200
    assert passwordless(Client(), key).status_code == 200
    stored = pat.webauthncredential_set.get().sign_count
    assert stored == key.counter == 2
    # A copy of the key that was made earlier answers with a counter the portal has passed.
    client = Client()
    response = passwordless(client, key, counter=1)
    assert response.status_code == 400
    assert SESSION_KEY not in client.session
    failure = last_refusal("sign_in_failed")
    assert failure.context["refusal"] == "sign_counter"
    assert "not greater than current count of 2" in failure.context["detail"]
    assert pat.webauthncredential_set.get().sign_count == 2  # not moved back


def test_an_oversized_body_is_refused_before_it_is_read(pat):
    client = proved_client(pat)
    post_json(client, REGISTER_BEGIN)
    padding = "A" * (200 * 1024)
    response = post_json(client, REGISTER_COMPLETE, {"credential": {"id": padding}})
    assert response.status_code == 413
    assert "too large" in response.json()["error"]
    assert last_refusal().context["refusal"] == "oversized"
    response = post_json(Client(), SIGN_IN_COMPLETE, {"credential": {"id": padding}})
    assert response.status_code == 413


def test_an_attestation_with_an_oversized_credential_id_is_refused(pat):
    client = proved_client(pat)
    options = post_json(client, REGISTER_BEGIN).json()
    big = SoftAuthenticator()
    big.credential_id = b"\x01" * 1500  # past WebAuthn's 1023 bytes
    response = post_json(client, REGISTER_COMPLETE, {"credential": big.register(options)})
    assert response.status_code in (400, 413)
    assert pat.webauthncredential_set.count() == 0
    assert last_refusal().context["refusal"] in ("oversized", "malformed")


def test_a_malformed_attestation_is_refused(pat):
    client = proved_client(pat)
    options = post_json(client, REGISTER_BEGIN).json()
    credential = SoftAuthenticator().register(options)
    credential["response"]["attestationObject"] = b64url(b"\xff\x00 not cbor")
    response = post_json(client, REGISTER_COMPLETE, {"credential": credential})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Your browser sent a response")
    assert last_refusal().context["refusal"] == "malformed"

    # CBOR, but not an attestation object.
    options = post_json(client, REGISTER_BEGIN).json()
    credential = SoftAuthenticator().register(options)
    credential["response"]["attestationObject"] = b64url(cbor2.dumps({"fmt": 7}))
    response = post_json(client, REGISTER_COMPLETE, {"credential": credential})
    assert response.status_code == 400


@pytest.mark.parametrize(
    "body",
    [b"not json", b"[1, 2]", b'"text"', b'{"purpose": "passwordless", "credential": 3}'],
)
def test_bodies_that_are_not_a_response_are_refused(pat, body):
    client = Client()
    begin_passwordless(client)
    response = client.post(SIGN_IN_COMPLETE, data=body, content_type="application/json")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"


def test_an_unknown_passkey_signs_nobody_in(pat):
    client = Client()
    response = complete_passwordless(
        client, SoftAuthenticator().assertion(begin_passwordless(client))
    )
    assert response.status_code == 400
    failure = last_refusal("sign_in_failed")
    assert failure.context["reason"] == "unknown_passkey" and failure.subject_user_id is None


def _json_values():
    scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=40)
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner),
        max_leaves=12,
    )


def _credential_shapes():
    """Credentials of the right outline with wrong contents, and anything else."""
    b64 = st.binary(max_size=80).map(lambda b: base64.urlsafe_b64encode(b).decode().rstrip("="))
    response = st.fixed_dictionaries(
        {},
        optional={
            "clientDataJSON": b64 | _json_values(),
            "attestationObject": b64 | _json_values(),
            "authenticatorData": b64 | _json_values(),
            "signature": b64 | _json_values(),
            "userHandle": b64 | _json_values(),
            "transports": _json_values(),
        },
    )
    outline = st.fixed_dictionaries(
        {"id": b64, "rawId": b64, "type": st.just("public-key") | st.text(max_size=10)},
        optional={"response": response | _json_values(), "clientExtensionResults": _json_values()},
    )
    return outline | _json_values()


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    credential=_credential_shapes(), purpose=st.sampled_from(["passwordless", "second_step", "x"])
)
def test_arbitrary_credentials_never_answer_500(pat, credential, purpose):
    client = Client(raise_request_exception=False)
    post_json(client, SIGN_IN_BEGIN, {"purpose": "passwordless"})
    response = client.post(
        SIGN_IN_COMPLETE,
        data=json.dumps({"purpose": purpose, "credential": credential}),
        content_type="application/json",
    )
    assert response.status_code in (400, 413), response.content


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(credential=_credential_shapes())
def test_arbitrary_registrations_never_answer_500(pat, credential):
    client = proved_client(pat)
    client.raise_request_exception = False
    post_json(client, REGISTER_BEGIN)
    response = post_json(client, REGISTER_COMPLETE, {"name": "x", "credential": credential})
    assert response.status_code in (400, 413), response.content
