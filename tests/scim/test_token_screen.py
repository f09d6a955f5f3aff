"""The administrators' SCIM token screen: create (shown once), list, revoke; audited."""

from __future__ import annotations

import pytest
from django.urls import reverse

from accounts.tokens.lifecycle import hash_secret
from audit.choices import AuditAction
from audit.models import AuditEvent
from roles import catalog
from scim.models import ScimToken
from tests import builders
from tests.access_helpers import assert_screen_access
from tests.scim.conftest import make_scim_token

pytestmark = pytest.mark.django_db
URL = "/settings/provisioning/"


def test_anonymous_and_without_parameters_full_refused(owner, signed_in):
    reader = builders.make_user(owner, username="reader", grants={catalog.PARAMETERS: "read"})
    assert_screen_access(signed_in, [URL], denied=reader)
    assert signed_in(reader).post(URL, {"name": "Okta", "lifetime_days": 30}).status_code == 403
    assert not ScimToken.objects.exists()


def test_administrator_creates_a_token_shown_once(admin_user, signed_in):
    client = signed_in(admin_user)
    page = client.get(URL)
    assert page.status_code == 200
    assert b"http://testserver/scim/v2" in page.content

    response = client.post(URL, {"name": "Okta", "lifetime_days": 30})

    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"
    token = ScimToken.objects.get()
    text = response.context["text"]
    assert text.startswith(f"scim_{token.prefix}_")
    assert token.secret_hash == hash_secret(text.split("_", 2)[2])
    assert text.encode() in response.content
    assert text.encode() not in client.get(URL).content
    event = AuditEvent.objects.get(action=AuditAction.TOKEN_CREATED)
    assert event.context["kind"] == "scim"
    assert event.actor_id == admin_user.pk


def test_invalid_form_answers_400(admin_user, signed_in):
    response = signed_in(admin_user).post(URL, {"name": "", "lifetime_days": 99999})
    assert response.status_code == 400
    assert not ScimToken.objects.exists()


def test_revoke_stops_the_token(admin_user, signed_in, client):
    token, text = make_scim_token(admin_user.owner, admin_user)
    revoke = reverse("scim:token_revoke", args=[token.pk])
    page = signed_in(admin_user)
    assert page.get(revoke).status_code == 200
    assert page.post(revoke).status_code == 302
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert AuditEvent.objects.filter(
        action=AuditAction.TOKEN_REVOKED, context__kind="scim"
    ).exists()
    response = client.get("/scim/v2/Users", headers={"Authorization": f"Bearer {text}"})
    assert response.status_code == 401
    assert response.json()["status"] == "401"


def test_another_owners_token_cannot_be_revoked(admin_user, signed_in):
    other = builders.make_owner("Other")
    other_admin = builders.make_user(other, username="other-admin", privilege_level=10)
    token, _ = make_scim_token(other, other_admin)
    response = signed_in(admin_user).post(reverse("scim:token_revoke", args=[token.pk]))
    assert response.status_code == 404
    token.refresh_from_db()
    assert token.revoked_at is None


def test_expired_and_malformed_tokens_answer_401(admin_user, client):
    _, text = make_scim_token(admin_user.owner, admin_user)
    ScimToken.objects.update(expires_at="2000-01-01T00:00:00Z")
    for header in (f"Bearer {text}", "Bearer nope", "", f"Basic {text}"):
        response = client.get("/scim/v2/Users", headers={"Authorization": header})
        assert response.status_code == 401
