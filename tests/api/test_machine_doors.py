"""The machine doors answer bad input in their own error format, never with a 500 or HTML.

Tried as an attacker and as a sloppy integration would: bodies over the size limit, JSON nested
tens of thousands deep, text the database cannot store, ids in other scripts' digits, numbers
beyond 64 bits; then hypothesis throws arbitrary JSON at the SCIM endpoints.
"""

import json

import pytest
from django.test import override_settings
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from roles import catalog
from tests.builders import make_api_user, make_token
from tests.scim.conftest import SCIM_JSON, ScimClient, make_scim_token, user_body

pytestmark = pytest.mark.django_db

SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def scim(client, owner, admin_user):
    return ScimClient(client, make_scim_token(owner, admin_user)[1])


@pytest.fixture
def api_headers(owner):
    user = make_api_user(owner, api_grants={catalog.API_USERS: "write", catalog.API_AUTHZ: "read"})
    return {"Authorization": f"Bearer {make_token(user)[1]}"}


def assert_scim_error(response, status):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith(SCIM_JSON)
    body = response.json()
    assert SCIM_ERROR in body["schemas"]
    return body


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=10_000)
def test_a_body_over_the_limit_is_refused_in_each_doors_format(client, scim, api_headers):
    big = json.dumps(user_body(displayName="x" * 20_000))
    body = assert_scim_error(scim.post("Users", big), 413)
    assert "10000 bytes" in body["detail"]
    for path in ("/api/v1/users", "/access/v1/evaluation"):
        response = client.post(path, data=big, content_type="application/json", headers=api_headers)
        assert response.status_code == 413, path
        assert response.json()["error"]["code"] == "too_large"
        assert "10000 bytes" in response.json()["error"]["message"]


def test_json_nested_tens_of_thousands_deep(scim, client, api_headers):
    deep = "[" * 50_000 + "]" * 50_000
    assert_scim_error(scim.post("Users", deep), 400)
    response = client.post(
        "/api/v1/users", data=deep, content_type="application/json", headers=api_headers
    )
    assert 400 <= response.status_code < 500
    assert response["Content-Type"].startswith("application/json")


def test_text_the_database_cannot_store(scim):
    body = assert_scim_error(scim.post("Users", user_body(displayName="Ada\x00Lovelace")), 400)
    assert body["scimType"] == "invalidValue"
    assert_scim_error(scim.post("Users", user_body(username="nul\u0000@example.org")), 400)


@pytest.mark.parametrize("ref", ["١٢", "²", "99999999999999999999", "-1", "1e3", "%00"])
def test_ids_that_name_nothing(scim, ref):
    assert_scim_error(scim.get(f"Users/{ref}"), 404)
    assert_scim_error(scim.get(f"Groups/{ref}"), 404)
    response = scim.get(f'Users?filter=id eq "{ref}"')
    assert response.status_code == 200 and response.json()["totalResults"] == 0


@pytest.mark.parametrize(
    "query",
    ["startIndex=99999999999999999999", "count=99999999999999999999", "startIndex=٣", "count=-5"],
)
def test_paging_numbers_beyond_64_bits_or_in_other_digits(scim, query):
    response = scim.get(f"Users?{query}")
    assert response.status_code in (200, 400), response.content[:300]
    assert response["Content-Type"].startswith(SCIM_JSON)


def test_if_match_in_other_digits(scim):
    created = scim.post("Users", user_body()).json()
    response = scim.put(f"Users/{created['id']}", user_body(), **{"If-Match": 'W/"٣"'})
    assert_scim_error(response, 412)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children),
    max_leaves=20,
)
scim_like = st.fixed_dictionaries(
    {"schemas": st.just(["urn:ietf:params:scim:schemas:core:2.0:User"])},
    optional={
        "userName": json_values,
        "name": json_values,
        "emails": json_values,
        "active": json_values,
        "displayName": json_values,
        "externalId": json_values,
    },
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(body=scim_like | json_values)
def test_scim_never_answers_500_to_any_json(scim, body):
    for response in (
        scim.post("Users", json.dumps(body)),
        scim.post("Groups", json.dumps(body)),
        scim.patch("Users/1", json.dumps(body)),
    ):
        assert response.status_code < 500, (body, response.content[:300])
        assert response["Content-Type"].startswith(SCIM_JSON)
