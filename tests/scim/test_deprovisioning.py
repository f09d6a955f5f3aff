"""Deactivation over SCIM ends a signed-in session at its next request and stops API tokens."""

from __future__ import annotations

import pytest
from django.test import Client

from accounts.models import User
from tests import builders
from tests.scim.conftest import user_body

pytestmark = pytest.mark.django_db


def test_scim_deactivation_ends_the_session_and_the_api_token(scim):
    created = scim.post("Users", user_body()).json()
    person = User.objects.get(pk=created["id"])
    User.objects.filter(pk=person.pk).update(allow_api_read=True)
    person.refresh_from_db()
    _, api_text = builders.make_token(person)
    browser = Client()
    browser.force_login(person, backend="accounts.backends.PortalBackend")
    api = Client()
    bearer = {"Authorization": f"Bearer {api_text}"}
    assert browser.get("/").status_code == 200
    assert api.get("/api/v1/me", headers=bearer).status_code == 200

    response = scim.patch(
        f"Users/{person.pk}",
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": "Replace", "path": "active", "value": "False"}],
        },
    )

    assert response.status_code == 200
    after = browser.get("/")
    assert after.status_code == 302
    assert "sign-in" in after["Location"] or "login" in after["Location"]
    assert api.get("/api/v1/me", headers=bearer).status_code == 401
