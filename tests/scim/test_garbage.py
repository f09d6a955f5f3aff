"""No body, filter or patch, however malformed, makes the SCIM endpoint answer 500."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.scim.conftest import user_body

pytestmark = pytest.mark.django_db

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
KEYS = st.sampled_from(
    ["userName", "emails", "name", "active", "externalId", "displayName", "members", "schemas"]
)
SHAPED = st.dictionaries(KEYS, JSON, max_size=5)
OPERATION = st.fixed_dictionaries(
    {"op": st.sampled_from(["add", "Replace", "remove", "copy", 5]), "value": JSON},
    optional={"path": st.text(max_size=30) | st.sampled_from(["active", "members", "emails[x"])},
)
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@SETTINGS
@given(body=JSON | SHAPED)
def test_garbage_user_bodies(scim, body):
    for path in ("Users", "Groups"):
        response = scim.post(path, json.dumps(body))
        assert response.status_code in {201, 400, 409}, response.content


@SETTINGS
@given(operations=st.lists(OPERATION, max_size=3), text=st.text(max_size=40))
def test_garbage_patches_and_filters(scim, operations, text):
    scim.post("Users", user_body())  # 409 after the first example: the user is there
    uid = scim.get('Users?filter=userName eq "ada@example.org"').json()["Resources"][0]["id"]
    body = {"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": operations}
    assert scim.patch(f"Users/{uid}", body).status_code in {200, 400, 404, 409}
    assert scim.get(f"Users?filter={text}").status_code in {200, 400}
    assert scim.get(f"Groups?filter={text}&startIndex={text[:3]}").status_code in {200, 400}
