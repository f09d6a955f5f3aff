"""Fixtures of the SCIM tests: a token of the owner and a client that speaks SCIM with it."""

from __future__ import annotations

import datetime
import json

import pytest
from django.utils import timezone

from scim import tokens

SCIM_JSON = "application/scim+json"


def make_scim_token(owner, actor, *, name="Okta", provider=None, days=30):
    """Create a SCIM token of `owner` (as `actor`); return (token, text)."""
    return tokens.create_token(
        actor=actor,
        name=name,
        expires_at=timezone.now() + datetime.timedelta(days=days),
        provider=provider,
        reason="",
    )


class ScimClient:
    """The Django test client with the bearer token and SCIM JSON bodies."""

    def __init__(self, client, text: str):
        self.client = client
        self.headers = {"Authorization": f"Bearer {text}"}

    def _send(self, method, path, body=None, **headers):
        data = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
        call = getattr(self.client, method)
        kwargs = {"headers": {**self.headers, **headers}}
        if data is not None:
            kwargs.update(data=data, content_type=SCIM_JSON)
        return call(f"/scim/v2/{path}", **kwargs)

    def get(self, path, **headers):
        return self._send("get", path, **headers)

    def post(self, path, body, **headers):
        return self._send("post", path, body, **headers)

    def put(self, path, body, **headers):
        return self._send("put", path, body, **headers)

    def patch(self, path, body, **headers):
        return self._send("patch", path, body, **headers)

    def delete(self, path, **headers):
        return self._send("delete", path, **headers)


@pytest.fixture
def scim_token(owner, admin_user):
    return make_scim_token(owner, admin_user)


@pytest.fixture
def scim(client, scim_token):
    return ScimClient(client, scim_token[1])


def user_body(username="ada@example.org", **extra):
    body = {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": username,
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"value": username, "type": "work", "primary": True}],
        "active": True,
    }
    body.update(extra)
    return body
