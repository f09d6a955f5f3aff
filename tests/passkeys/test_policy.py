"""The owner's rule "require phishing-resistant sign-in for privileged users", and the policy
screen's passkey settings."""

import pyotp
import pytest
from django.test import Client
from django.utils import timezone

from accounts.passkeys import policy
from audit.models import AuditEvent
from roles import catalog
from tests.builders import PASSWORD, make_totp_device, make_user
from tests.passkeys.conftest import enrol, post_sign_in, second_step, set_policy
from tests.twofactor.conftest import proved_client

pytestmark = pytest.mark.django_db

ADD = "/me/two-factor/passkeys/add/"


def code_of(device, moment=None) -> str:
    device, _ = device  # make_totp_device's (device, TOTP)
    return pyotp.TOTP(device.base32_secret).at((moment or timezone.now()).timestamp())


@pytest.mark.parametrize(
    "grants",
    [
        {catalog.DP_ACCESS: catalog.READ},
        {catalog.DP_USER_ACTIVITY: catalog.READ},
        {catalog.USERS: catalog.FULL},
        {catalog.ACCESS_REQUESTS: catalog.APPROVE},
    ],
)
def test_privileged_means_data_protection_users_full_or_approval(owner, grants):
    user = make_user(owner, username="priv", grants=grants, privilege_level=9)
    assert policy.is_privileged(user)


@pytest.mark.parametrize(
    "grants", [{}, {catalog.USERS: catalog.READ}, {catalog.ACCESS_REQUESTS: catalog.READ}]
)
def test_others_are_not_privileged(owner, grants):
    assert not policy.is_privileged(make_user(owner, username="plain", grants=grants))


def test_a_privileged_user_adds_a_passkey_before_anything_else(owner):
    set_policy(owner, require_phishing_resistant=True)
    admin = make_user(owner, username="adm", grants={catalog.USERS: catalog.FULL})
    plain = make_user(owner, username="plain", grants={catalog.USERS: catalog.READ})

    client = Client()
    assert post_sign_in(client, "plain").status_code == 302
    assert client.get("/").status_code == 200  # the rule is for privileged people only

    client = Client()
    post_sign_in(client, "adm")
    for url in ("/", "/users/", "/me/sessions/"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"] == ADD, url
    page = client.get(ADD)
    assert page.status_code == 200
    assert "Your organisation requires a passkey" in page.content.decode()

    enrol(admin, client=client)
    assert client.get("/").status_code == 200
    assert plain  # untouched


def test_totp_signs_them_in_until_they_hold_a_passkey_then_never(owner, clock):
    set_policy(owner, require_phishing_resistant=True)
    admin = make_user(
        owner, username="adm", grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=9
    )
    device = make_totp_device(admin)

    client = Client()
    post_sign_in(client, "adm")
    response = client.post("/sign-in/verify/", {"code": code_of(device)})
    assert response.status_code == 302  # no passkey yet: the app still completes the sign-in
    assert client.get("/")["Location"] == ADD  # and the next stop is adding one

    authenticator = enrol(admin, client=proved_client(admin))
    clock.advance(seconds=60)
    client = Client()
    post_sign_in(client, "adm")
    page = client.get("/sign-in/verify/").content.decode()
    assert "Use your passkey" in page and 'name="code"' not in page
    response = client.post("/sign-in/verify/", {"code": code_of(device)})
    assert response.status_code == 400
    assert "requires a passkey" in response.content.decode()
    refused = AuditEvent.objects.filter(action="totp_failed").latest("seq")
    assert refused.context["phishing_resistant_rule"] is True
    assert refused.subject_user_id == admin.pk

    assert second_step(client, authenticator).status_code == 200


def test_step_up_refuses_a_code_under_the_rule(owner, clock):
    set_policy(owner, require_phishing_resistant=True)
    admin = make_user(owner, username="adm", grants={catalog.USERS: catalog.FULL})
    device = make_totp_device(admin)
    enrol(admin, client=proved_client(admin))
    clock.advance(minutes=10)
    client = Client()
    client.force_login(admin, backend="accounts.backends.PortalBackend")
    page = client.get("/me/confirm/").content.decode()
    assert "Confirm with a passkey" in page and 'name="password"' not in page
    response = client.post("/me/confirm/", {"password": PASSWORD, "code": code_of(device)})
    assert response.status_code == 400
    assert AuditEvent.objects.filter(action="step_up").count() == 0


def test_users_of_the_identity_provider_are_left_to_it(owner):
    set_policy(owner, require_phishing_resistant=True)
    user = make_user(owner, username="sso", grants={catalog.USERS: catalog.FULL})
    type(user).objects.filter(pk=user.pk).update(auth_source="saml")
    user.refresh_from_db()
    assert not policy.phishing_resistant_required(user)


def test_the_policy_screen_shows_and_saves_the_passkey_settings(owner):
    admin = make_user(
        owner, username="adm", grants={catalog.PARAMETERS: catalog.FULL}, privilege_level=9
    )
    client = proved_client(admin)
    page = client.get("/settings/password-policy/").content.decode()
    assert "Passkeys and sign-in alerts" in page
    assert "Allow passwordless sign-in with a passkey" in page
    form = client.get("/settings/password-policy/").context["form"]
    data = {name: value for name, value in form.initial.items() if value is not False}
    data.update(
        allow_passwordless="on", require_phishing_resistant="on", reason="Passkeys roll-out"
    )
    data.pop("notify_new_sign_in", None)
    response = client.post("/settings/password-policy/", data)
    assert response.status_code == 302, response.context["form"].errors
    owner.password_policy.refresh_from_db()
    saved = owner.password_policy
    assert saved.allow_passwordless and saved.require_phishing_resistant
    assert not saved.notify_new_sign_in
    changed = AuditEvent.objects.filter(action="policy_changed").latest("seq")
    assert set(changed.changes) >= {
        "allow_passwordless",
        "require_phishing_resistant",
        "notify_new_sign_in",
    }
