"""SCIM Users: create, read, filter, page, replace, patch, deactivate, delete; errors; owners."""

from __future__ import annotations

import pytest

from accounts.choices import AuthSource, UserKind
from accounts.models import User
from audit.choices import AuditAction
from audit.models import AuditEvent
from scim.models import ScimUserLink
from tests import builders
from tests.scim.conftest import ScimClient, make_scim_token, user_body

pytestmark = pytest.mark.django_db
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"


def patch_body(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


def create(scim, username="ada@example.org", **extra):
    response = scim.post("Users", user_body(username, **extra))
    assert response.status_code == 201, response.content
    return response.json()


def test_create_makes_an_idp_managed_user(scim):
    body = create(scim, externalId="00u1")

    user = User.objects.get(pk=body["id"])
    assert user.auth_source == AuthSource.SAML
    assert user.kind == UserKind.INTERACTIVE
    assert not user.has_usable_password()
    assert user.allow_login
    assert (user.first_name, user.last_name, user.email) == ("Ada", "Lovelace", "ada@example.org")
    assert ScimUserLink.objects.get(user=user).external_id == "00u1"
    assert body["meta"]["version"] == f'W/"{user.row_version}"'
    event = AuditEvent.objects.get(action=AuditAction.USER_CREATED, target_id=str(user.pk))
    assert event.actor_id is None
    assert event.actor_label == "SCIM: Okta"
    assert event.method == "scim"


def test_duplicates_answer_409_uniqueness(scim):
    create(scim, externalId="00u1")
    for body in (
        user_body("ADA@example.org"),
        user_body("other@example.org", emails=[{"value": "ada@example.org"}]),
        user_body("third@example.org", externalId="00u1"),
    ):
        response = scim.post("Users", body)
        assert response.status_code == 409
        assert response.json()["scimType"] == "uniqueness"
        assert response["Content-Type"] == "application/scim+json"


def test_missing_username_or_email_answers_400(scim):
    response = scim.post("Users", {"schemas": user_body()["schemas"], "userName": "nomail"})
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    response = scim.post("Users", {"schemas": user_body()["schemas"]})
    assert response.status_code == 400


def test_filters(scim):
    ada = create(scim, externalId="00u1")
    create(scim, "bob@example.org", externalId="00u2")
    cases = {
        'userName eq "ADA@example.org"': [ada["id"]],
        'externalId eq "00u1"': [ada["id"]],
        'emails.value eq "ada@example.org"': [ada["id"]],
        'userName eq "ada@example.org" or externalId eq "00u2"': None,
        'userName eq "ada@example.org" and externalId eq "00u2"': [],
    }
    for text, expected in cases.items():
        response = scim.get(f"Users?filter={text}")
        assert response.status_code == 200, text
        ids = [r["id"] for r in response.json()["Resources"]]
        if expected is None:
            assert len(ids) == 2
        else:
            assert ids == expected, text


@pytest.mark.parametrize(
    "text",
    ['title sw "x"', 'userName co "a"', "userName eq", "((", 'not (userName eq "a")', "x" * 2000],
)
def test_bad_filters_answer_400_invalid_filter(scim, text):
    response = scim.get(f"Users?filter={text}")
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidFilter"


def test_paging(scim):
    for n in range(5):
        create(scim, f"p{n}@example.org")
    page = scim.get("Users?startIndex=2&count=2").json()
    assert page["startIndex"] == 2
    assert page["itemsPerPage"] == 2
    assert page["totalResults"] == User.objects.count()
    assert scim.get("Users?count=abc").status_code == 400


def test_put_replaces_the_profile(scim):
    body = create(scim)
    replaced = user_body("ada@example.org", name={"givenName": "Augusta", "familyName": "King"})
    response = scim.put(f"Users/{body['id']}", replaced)
    assert response.status_code == 200
    user = User.objects.get(pk=body["id"])
    assert (user.first_name, user.last_name) == ("Augusta", "King")
    assert AuditEvent.objects.filter(action=AuditAction.USER_CHANGED, method="scim").exists()


def test_etag_mismatch_answers_412(scim):
    body = create(scim)
    response = scim.put(f"Users/{body['id']}", user_body(), **{"If-Match": 'W/"99"'})
    assert response.status_code == 412


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "Replace", "path": "active", "value": "False"},  # Entra ID
        {"op": "replace", "value": {"active": False}},  # Okta
    ],
)
def test_patch_active_false_deactivates_through_the_account_service(scim, operation):
    body = create(scim)
    response = scim.patch(f"Users/{body['id']}", patch_body(operation))
    assert response.status_code == 200, response.content
    assert response.json()["active"] is False
    user = User.objects.get(pk=body["id"])
    assert not user.allow_login
    event = AuditEvent.objects.get(action=AuditAction.USER_DEACTIVATED)
    assert event.actor_label == "SCIM: Okta"
    assert event.changes == {"allow_login": [True, False]}

    response = scim.patch(
        f"Users/{body['id']}", patch_body({"op": "Replace", "path": "active", "value": "True"})
    )
    assert response.json()["active"] is True
    assert AuditEvent.objects.filter(action=AuditAction.USER_REACTIVATED).exists()


def test_patch_attributes(scim):
    body = create(scim)
    response = scim.patch(
        f"Users/{body['id']}",
        patch_body(
            {"op": "Replace", "path": "name.givenName", "value": "Augusta"},
            {"op": "Add", "path": 'emails[type eq "work"].value', "value": "ak@example.org"},
            {"op": "Replace", "path": "displayName", "value": "Augusta King"},
        ),
    )
    assert response.status_code == 200, response.content
    user = User.objects.get(pk=body["id"])
    assert user.first_name == "Augusta"
    assert user.email == "ak@example.org"
    assert user.display_name == "Augusta King"


def test_delete_without_history_removes_the_user(scim):
    body = create(scim)
    assert scim.delete(f"Users/{body['id']}").status_code == 204
    assert not User.objects.filter(pk=body["id"]).exists()
    assert scim.get(f"Users/{body['id']}").status_code == 404
    assert AuditEvent.objects.filter(action=AuditAction.USER_DELETED, method="scim").exists()


def test_delete_with_history_deactivates_and_hides(scim):
    body = create(scim)
    scim.patch(f"Users/{body['id']}", patch_body({"op": "replace", "value": {"active": False}}))
    assert scim.delete(f"Users/{body['id']}").status_code == 204
    user = User.objects.get(pk=body["id"])
    assert not user.allow_login
    assert scim.get(f"Users/{body['id']}").status_code == 404
    assert scim.get('Users?filter=userName eq "ada@example.org"').json()["totalResults"] == 0


def test_another_owners_token_sees_nothing(scim, client):
    body = create(scim)
    other = builders.make_owner("Other")
    other_admin = builders.make_user(other, username="other-admin", privilege_level=10)
    _, text = make_scim_token(other, other_admin, name="Entra")
    theirs = ScimClient(client, text)
    assert theirs.get(f"Users/{body['id']}").status_code == 404
    assert theirs.patch(f"Users/{body['id']}", patch_body()).status_code == 404
    assert theirs.delete(f"Users/{body['id']}").status_code == 404
    listed = theirs.get("Users").json()
    assert listed["totalResults"] == 1  # only their own administrator
    assert listed["Resources"][0]["userName"] == "other-admin"
    assert theirs.get('Users?filter=userName eq "ada@example.org"').json()["Resources"] == []
    assert User.objects.get(pk=body["id"]).allow_login


def test_api_users_are_invisible(scim, owner):
    api_user = builders.make_api_user(owner)
    assert scim.get(f"Users/{api_user.pk}").status_code == 404


@pytest.mark.parametrize(
    "raw", [b"", b"not json", b"[]", b'{"userName": 5}', b'{"emails": "x"}', b"\xff\xfe"]
)
def test_garbage_bodies_answer_400(scim, raw):
    response = scim.client.post(
        "/scim/v2/Users", data=raw, content_type="application/scim+json", headers=scim.headers
    )
    assert response.status_code == 400


def test_provisioned_fields_are_read_only_on_the_screens(scim, admin_user, signed_in):
    body = create(scim)
    user = User.objects.get(pk=body["id"])
    from django.core.exceptions import ValidationError

    from accounts import users
    from accounts.choices import AccessSource

    assert {"username", "email", "first_name", "last_name"} <= users.idp_managed_fields(user)
    with pytest.raises(ValidationError):
        users.update_user(
            user,
            actor=admin_user,
            data={"first_name": "Changed"},
            expected_row_version=user.row_version,
            reason="",
            source=AccessSource.SCREEN,
        )
    assert User.objects.get(pk=user.pk).first_name == "Ada"
