"""Helpers of the passkey tests: JSON ceremonies over the test client with a software
authenticator (tests/passkeys/authenticator.py), owner policies, enrolled users."""

from __future__ import annotations

import json

import pytest

from tests.passkeys.authenticator import SoftAuthenticator
from tests.security.conftest import post_sign_in, set_policy  # noqa: F401
from tests.twofactor.conftest import clock, proved_client  # noqa: F401

REGISTER_BEGIN = "/me/two-factor/passkeys/add/begin/"
REGISTER_COMPLETE = "/me/two-factor/passkeys/add/complete/"
SIGN_IN_BEGIN = "/sign-in/passkey/begin/"
SIGN_IN_COMPLETE = "/sign-in/passkey/complete/"
STEP_UP_BEGIN = "/me/confirm/passkey/begin/"
STEP_UP_COMPLETE = "/me/confirm/passkey/complete/"


def post_json(client, url: str, data: dict | None = None, **extra):
    return client.post(url, data=json.dumps(data or {}), content_type="application/json", **extra)


def enrol(
    user, authenticator: SoftAuthenticator | None = None, *, name: str = "Laptop", client=None
):
    """Register a passkey of `user` through the screens' endpoints; return the authenticator."""
    authenticator = authenticator or SoftAuthenticator()
    client = client or proved_client(user)
    options = post_json(client, REGISTER_BEGIN).json()
    response = post_json(
        client, REGISTER_COMPLETE, {"name": name, "credential": authenticator.register(options)}
    )
    assert response.status_code == 200, response.content
    return authenticator


def passwordless(client, authenticator: SoftAuthenticator, **assertion):
    """Sign in with a passkey alone; return the completing response."""
    options = post_json(client, SIGN_IN_BEGIN, {"purpose": "passwordless"}).json()
    return post_json(
        client,
        SIGN_IN_COMPLETE,
        {"purpose": "passwordless", "credential": authenticator.assertion(options, **assertion)},
    )


def second_step(client, authenticator: SoftAuthenticator, **assertion):
    """After the password: answer the second step with a passkey; return the response."""
    options = post_json(client, SIGN_IN_BEGIN, {"purpose": "second_step"}).json()
    return post_json(
        client,
        SIGN_IN_COMPLETE,
        {"purpose": "second_step", "credential": authenticator.assertion(options, **assertion)},
    )


@pytest.fixture
def passkey_owner(owner):
    """The test owner, allowing passwordless sign-in."""
    set_policy(owner, allow_passwordless=True)
    return owner
