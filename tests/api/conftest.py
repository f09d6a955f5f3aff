"""Fixtures of the API tests: an API user, a token for it, and a client that sends the token."""

import json

import pytest

from tests.builders import make_api_user, make_token


class ApiClient:
    """A thin wrapper over Django's test client that speaks JSON with a bearer token."""

    def __init__(self, client, text=None):
        self.client = client
        self.text = text

    def call(self, method, path, body=None, *, token=None, **headers):
        text = token if token is not None else self.text
        if text:
            headers.setdefault("Authorization", f"Bearer {text}")
        kwargs = {"headers": headers}
        if body is not None:
            kwargs["data"] = json.dumps(body)
            kwargs["content_type"] = "application/json"
        return getattr(self.client, method.lower())(f"/api/v1{path}", **kwargs)

    def get(self, path, **kw):
        return self.call("GET", path, **kw)

    def post(self, path, body=None, **kw):
        return self.call("POST", path, body, **kw)

    def patch(self, path, body=None, **kw):
        return self.call("PATCH", path, body, **kw)


@pytest.fixture
def api(client):
    return ApiClient(client)


@pytest.fixture
def token_for(client):
    """Return a function: (api_grants, **user fields) -> ApiClient holding a fresh token."""

    def build(owner, api_grants=None, *, token_fields=None, **fields):
        user = make_api_user(owner, api_grants=api_grants or {}, **fields)
        token, text = make_token(user, **(token_fields or {}))
        api = ApiClient(client, text)
        api.user, api.token = user, token
        return api

    return build
