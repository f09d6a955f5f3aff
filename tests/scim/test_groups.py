"""SCIM Groups: membership feeds the SAML group → role mapping of the token's provider."""

from __future__ import annotations

import pytest

from accounts.models import User
from audit.choices import AuditAction
from audit.models import AuditEvent
from roles import catalog
from scim.models import ScimGroup
from sso.models import SamlGroupMapping, SamlIdentityProvider, SsoIdentity
from tests import builders
from tests.scim.conftest import ScimClient, make_scim_token, user_body

pytestmark = pytest.mark.django_db
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"


@pytest.fixture
def mapped(owner, admin_user, client):
    """A provider mapping the IdP group "Finance" to a role, and a SCIM client using it."""
    provider = SamlIdentityProvider.objects.create(
        owner=owner, name="Okta", slug="okta", entity_id="http://idp.example/okta"
    )
    group = builders.make_role_group(owner, "Finance readers", grants={catalog.USERS: "read"})
    role = builders.make_role(owner, "Finance", groups=[group])
    SamlGroupMapping.objects.create(provider=provider, idp_group="Finance", role=role)
    _, text = make_scim_token(owner, admin_user, provider=provider)
    return ScimClient(client, text), role, provider


def test_membership_gives_and_takes_the_mapped_role(mapped):
    scim, role, provider = mapped
    person = scim.post("Users", user_body()).json()
    assert SsoIdentity.objects.filter(provider=provider, name_id="ada@example.org").exists()
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "Finance"}).json()
    version = User.objects.get(pk=person["id"]).permissions_version

    response = scim.patch(  # the add both providers send
        f"Groups/{group['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "add", "path": "members", "value": [{"value": person["id"]}]}],
        },
    )

    assert response.status_code == 200, response.content
    user = User.objects.get(pk=person["id"])
    assert user.role == role
    assert user.permissions_version > version
    mapped_event = AuditEvent.objects.get(
        action=AuditAction.USER_CHANGED, details__contains="Role mapping"
    )
    assert mapped_event.context["source"] == "scim"  # the same writer as every other door
    assert mapped_event.changes == {"role": [None, "Finance"]}
    listed = scim.get('Groups?filter=displayName eq "finance"').json()
    assert [g["id"] for g in listed["Resources"]] == [group["id"]]
    assert listed["Resources"][0]["members"][0]["value"] == person["id"]

    response = scim.patch(  # Okta's removal (Entra ID's is in the sequence tests)
        f"Groups/{group['id']}",
        {
            "schemas": [PATCH],
            "Operations": [{"op": "Remove", "path": f'members[value eq "{person["id"]}"]'}],
        },
    )
    assert response.status_code == 200, response.content
    assert User.objects.get(pk=person["id"]).role is None


def test_deleting_a_group_takes_the_role_away(mapped):
    scim, role, _ = mapped
    person = scim.post("Users", user_body()).json()
    body = {"schemas": [GROUP], "displayName": "Finance", "members": [{"value": person["id"]}]}
    group = scim.post("Groups", body).json()
    assert User.objects.get(pk=person["id"]).role == role
    assert scim.delete(f"Groups/{group['id']}").status_code == 204
    assert User.objects.get(pk=person["id"]).role is None
    assert scim.get(f"Groups/{group['id']}").status_code == 404


def test_local_users_keep_their_role(mapped, admin_user):
    scim, role, _ = mapped
    before = admin_user.role_id
    scim.post(
        "Groups",
        {"schemas": [GROUP], "displayName": "Finance", "members": [{"value": str(admin_user.pk)}]},
    )
    admin_user.refresh_from_db()
    assert admin_user.role_id == before


def test_group_names_are_unique_per_owner(scim):
    assert scim.post("Groups", {"schemas": [GROUP], "displayName": "Ops"}).status_code == 201
    response = scim.post("Groups", {"schemas": [GROUP], "displayName": "ops"})
    assert response.status_code == 409
    assert response.json()["scimType"] == "uniqueness"


def test_unknown_members_are_refused(scim):
    response = scim.post(
        "Groups", {"schemas": [GROUP], "displayName": "Ops", "members": [{"value": "999999"}]}
    )
    assert response.status_code == 400
    assert response.json()["scimType"] == "invalidValue"
    assert not ScimGroup.objects.exists()


def test_put_replaces_name_and_members(scim):
    person = scim.post("Users", user_body()).json()
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "Ops"}).json()
    response = scim.put(
        f"Groups/{group['id']}",
        {"schemas": [GROUP], "displayName": "Operations", "members": [{"value": person["id"]}]},
    )
    assert response.status_code == 200
    stored = ScimGroup.objects.get()
    assert stored.display_name == "Operations"
    assert list(stored.members.values_list("pk", flat=True)) == [int(person["id"])]


def test_another_owners_groups_are_invisible(scim, client):
    group = scim.post("Groups", {"schemas": [GROUP], "displayName": "Ops"}).json()
    other = builders.make_owner("Other")
    other_admin = builders.make_user(other, username="other-admin", privilege_level=10)
    _, text = make_scim_token(other, other_admin, name="Entra")
    theirs = ScimClient(client, text)
    assert theirs.get(f"Groups/{group['id']}").status_code == 404
    assert theirs.delete(f"Groups/{group['id']}").status_code == 404
    assert theirs.get("Groups").json()["totalResults"] == 0
    member = {"value": str(User.objects.get(username="admin").pk)}
    response = theirs.post("Groups", {"schemas": [GROUP], "displayName": "X", "members": [member]})
    assert response.status_code == 400
