"""Passkeys at sign-in: registration, the second step, passwordless and step-up, each a real
WebAuthn ceremony against the portal (a software authenticator signs; py_webauthn checks)."""

import pytest
from django.contrib.auth import SESSION_KEY
from django.test import Client

from audit.models import AuditEvent
from portal.stepup import PROOF_AT
from security.choices import SignInFailure
from security.models import SignInRestriction
from tests.builders import PASSWORD, make_totp_device, make_user
from tests.passkeys.conftest import (
    REGISTER_BEGIN,
    STEP_UP_BEGIN,
    STEP_UP_COMPLETE,
    enrol,
    passwordless,
    post_json,
    post_sign_in,
    second_step,
    set_policy,
)
from tests.twofactor.conftest import proved_client

pytestmark = pytest.mark.django_db


def signed_in_as(client) -> int | None:
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def test_register_lists_the_passkey_and_audits_it(owner):
    user = make_user(owner, username="pat")
    authenticator = enrol(user, name="Work laptop")
    passkey = user.webauthncredential_set.get()
    assert passkey.name == "Work laptop"
    assert passkey.transports == ["internal"] and passkey.discoverable is True
    event = AuditEvent.objects.get(action="passkey_added", subject_user_id=user.pk)
    assert event.context["name"] == "Work laptop" and event.context["kind"] == "passkey"
    assert authenticator.credential_id == bytes(passkey.credential_id)


def test_registration_needs_a_recent_proof(owner):
    user = make_user(owner, username="pat")
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    response = post_json(client, REGISTER_BEGIN)
    assert response.status_code == 403
    assert response.json()["redirect"].startswith("/me/confirm/")


def test_password_then_passkey_signs_in(owner):
    user = make_user(owner, username="pat")
    authenticator = enrol(user)
    client = Client()
    response = post_sign_in(client, "pat")
    assert response.status_code == 302 and response["Location"] == "/sign-in/verify/"
    assert signed_in_as(client) is None  # the second step is pending, nobody is signed in

    response = second_step(client, authenticator)
    assert response.status_code == 200, response.content
    assert response.json()["redirect"] == "/"
    assert signed_in_as(client) == user.pk
    event = AuditEvent.objects.filter(action="sign_in", subject_user_id=user.pk).latest("seq")
    assert event.method == "password+passkey"
    assert event.context == {"second_factor": "passkey"}
    assert user.webauthncredential_set.get().sign_count == authenticator.counter


def test_the_verify_page_offers_the_passkey(owner):
    user = make_user(owner, username="pat")
    enrol(user)
    client = Client()
    post_sign_in(client, "pat")
    page = client.get("/sign-in/verify/").content.decode()
    assert "Use your passkey" in page and 'data-passkey="second-step"' in page
    assert 'name="code"' not in page  # no authenticator app: no code to type


def test_passwordless_sign_in_when_the_owner_allows_it(owner):
    user = make_user(owner, username="pat")
    authenticator = enrol(user)
    client = Client()
    assert passwordless(client, authenticator).status_code == 400  # policy off
    assert signed_in_as(client) is None
    failure = AuditEvent.objects.filter(action="sign_in_failed").latest("seq")
    assert failure.context["reason"] == SignInFailure.PASSWORDLESS_NOT_ALLOWED
    assert failure.method == "passkey" and failure.subject_user_id == user.pk

    set_policy(owner, allow_passwordless=True)
    response = passwordless(client, authenticator)
    assert response.status_code == 200, response.content
    assert signed_in_as(client) == user.pk
    event = AuditEvent.objects.filter(action="sign_in", subject_user_id=user.pk).latest("seq")
    assert event.method == "passkey" and event.context == {"second_factor": "passkey"}
    assert client.session.get(PROOF_AT)  # the sign-in is a fresh proof, as a password's
    assert client.get("/").status_code == 200


def test_passwordless_keeps_next_on_this_site(passkey_owner):
    user = make_user(passkey_owner, username="pat")
    authenticator = enrol(user)
    client = Client()
    options = post_json(client, "/sign-in/passkey/begin/", {"purpose": "passwordless"}).json()
    body = {"purpose": "passwordless", "credential": authenticator.assertion(options)}
    response = post_json(client, "/sign-in/passkey/complete/?next=/me/sessions/", body)
    assert response.json()["redirect"] == "/me/sessions/"
    client = Client()
    options = post_json(client, "/sign-in/passkey/begin/", {"purpose": "passwordless"}).json()
    body = {"purpose": "passwordless", "credential": authenticator.assertion(options)}
    response = post_json(client, "/sign-in/passkey/complete/?next=https://evil.test/", body)
    assert response.json()["redirect"] == "/"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"allow_login": False}, SignInFailure.LOGIN_DISABLED),
        ({"auth_source": "saml"}, SignInFailure.SSO_MANAGED),
    ],
)
def test_passwordless_refuses_what_a_password_sign_in_refuses(passkey_owner, change, reason):
    user = make_user(passkey_owner, username="pat")
    authenticator = enrol(user)
    type(user).objects.filter(pk=user.pk).update(**change)
    client = Client()
    response = passwordless(client, authenticator)
    assert response.status_code == 400
    assert response.json()["error"].startswith("That passkey could not sign you in")
    assert signed_in_as(client) is None
    failure = AuditEvent.objects.filter(action="sign_in_failed").latest("seq")
    assert failure.context["reason"] == reason and failure.subject_user_id == user.pk


def test_passwordless_honours_sign_in_restrictions(passkey_owner):
    user = make_user(passkey_owner, username="pat")
    authenticator = enrol(user)
    SignInRestriction.objects.create(user=user, allowed_networks="10.0.0.0/8")
    client = Client()
    assert (
        passwordless(
            client,
            authenticator,
        ).status_code
        == 400
    )
    failure = AuditEvent.objects.filter(action="sign_in_failed").latest("seq")
    assert failure.context["reason"] == SignInFailure.ADDRESS_NOT_ALLOWED
    response = passwordless(client, authenticator)
    assert response.status_code == 400
    client = Client(REMOTE_ADDR="10.1.2.3")
    assert passwordless(client, authenticator).status_code == 200


def test_a_locked_account_is_not_signed_in_by_its_passkey(passkey_owner):
    user = make_user(passkey_owner, username="pat")
    authenticator = enrol(user)
    set_policy(passkey_owner, allow_passwordless=True, lockout_threshold=3)
    for _ in range(3):
        post_sign_in(Client(), "pat", password="wrong password entirely")
    client = Client()
    assert passwordless(client, authenticator).status_code == 400
    assert signed_in_as(client) is None
    failure = AuditEvent.objects.filter(action="sign_in_failed").latest("seq")
    assert failure.context["reason"] == SignInFailure.LOCKED_OUT


def test_a_passwordless_sign_in_clears_earlier_failures(passkey_owner):
    from security.models import AccountLockout

    user = make_user(passkey_owner, username="pat")
    authenticator = enrol(user)
    post_sign_in(Client(), "pat", password="wrong password entirely")
    assert AccountLockout.objects.get(user=user).failures == 1
    assert passwordless(Client(), authenticator).status_code == 200
    assert AccountLockout.objects.get(user=user).failures == 0


def test_step_up_with_a_passkey(owner):
    user = make_user(owner, username="pat")
    authenticator = enrol(user)
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    assert client.session.get(PROOF_AT) is None
    page = client.get("/me/confirm/?next=/me/two-factor/").content.decode()
    assert "Confirm with a passkey" in page
    assert 'name="password"' not in page  # the form would ask for a code it could not take

    options = post_json(client, STEP_UP_BEGIN).json()
    assert [c["id"] for c in options["allowCredentials"]]  # only this person's passkeys
    assert options["userVerification"] == "required"
    response = post_json(
        client,
        STEP_UP_COMPLETE + "?next=/me/two-factor/",
        {"credential": authenticator.assertion(options)},
    )
    assert response.status_code == 200, response.content
    assert response.json()["redirect"] == "/me/two-factor/"
    assert client.session.get(PROOF_AT)
    event = AuditEvent.objects.filter(action="step_up").latest("seq")
    assert event.method == "passkey" and event.subject_user_id == user.pk


def test_step_up_refuses_an_assertion_without_user_verification(owner):
    user = make_user(owner, username="pat")
    authenticator = enrol(user)
    client = Client()
    client.force_login(user, backend="accounts.backends.PortalBackend")
    options = post_json(client, STEP_UP_BEGIN).json()
    response = post_json(
        client, STEP_UP_COMPLETE, {"credential": authenticator.assertion(options, verified=False)}
    )
    assert response.status_code == 400
    assert client.session.get(PROOF_AT) is None
    refused = AuditEvent.objects.filter(action="passkey_refused").latest("seq")
    assert refused.context["refusal"] == "not_user_verified"


def test_totp_and_passkey_both_offered_without_the_rule(owner):
    user = make_user(owner, username="pat")
    make_totp_device(user)
    enrol(user, client=proved_client(user))
    client = Client()
    post_sign_in(client, "pat", PASSWORD)
    page = client.get("/sign-in/verify/").content.decode()
    assert "Use your passkey" in page and 'name="code"' in page
