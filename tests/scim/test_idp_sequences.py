"""Sequences replayed as Okta and Microsoft Entra ID send them, driven by scim2-client against
the live server: create, look up by filter, patch attributes, patch group membership,
deactivate, reactivate, delete."""

from __future__ import annotations

import pytest
from httpx2 import Client
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_models import Group, User

from accounts.models import User as PortalUser
from audit.choices import AuditAction
from audit.models import AuditEvent
from scim.models import ScimGroup
from tests.scim.conftest import make_scim_token

pytestmark = pytest.mark.django_db(transaction=True)
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
RAW = {"check_request_payload": False, "check_response_payload": False}


def patch(*operations):
    return {"schemas": [PATCH], "Operations": list(operations)}


# What each provider sends, step by step (payload shapes from their SCIM documentation).
OKTA = {
    "user": {
        "schemas": [USER],
        "userName": "ada@example.org",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "emails": [{"primary": True, "value": "ada@example.org", "type": "work"}],
        "displayName": "Ada Lovelace",
        "locale": "en-US",
        "externalId": "00u1a2b3c4",
        "groups": [],
        "active": True,
    },
    "lookup": 'userName eq "ada@example.org"',
    "rename": patch({"op": "replace", "value": {"name": {"givenName": "Augusta"}}}),
    "add_member": lambda uid: patch({"op": "add", "path": "members", "value": [{"value": uid}]}),
    "remove_member": lambda uid: patch({"op": "remove", "path": f'members[value eq "{uid}"]'}),
    "deactivate": patch({"op": "replace", "value": {"active": False}}),
    "reactivate": patch({"op": "replace", "value": {"active": True}}),
}
ENTRA = {
    "user": {
        "schemas": [USER, "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "ada",
        "userName": "ada@example.org",
        "active": True,
        "displayName": "Ada Lovelace",
        "emails": [{"primary": True, "type": "work", "value": "ada@example.org"}],
        "meta": {"resourceType": "User"},
        "name": {"formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Finance"},
    },
    "lookup": 'userName eq "ada@example.org"',
    "rename": patch({"op": "Replace", "path": "name.givenName", "value": "Augusta"}),
    "add_member": lambda uid: patch({"op": "Add", "path": "members", "value": [{"value": uid}]}),
    "remove_member": lambda uid: patch(
        {"op": "Remove", "path": "members", "value": [{"value": uid}]}
    ),
    "deactivate": patch({"op": "Replace", "path": "active", "value": "False"}),
    "reactivate": patch({"op": "Replace", "path": "active", "value": "True"}),
}


@pytest.mark.parametrize("idp", [OKTA, ENTRA], ids=["okta", "entra"])
def test_provider_sequence(idp, live_server, owner, admin_user):
    _, text = make_scim_token(owner, admin_user)
    http = Client(
        base_url=f"{live_server.url}/scim/v2",
        headers={"Authorization": f"Bearer {text}"},
        timeout=120,
    )
    scim = SyncSCIMClient(http)
    scim.discover()

    # Lookup before create: nobody yet.
    found = scim.query(User, query_parameters={"filter": idp["lookup"]}, **RAW)
    assert found["totalResults"] == 0
    created = scim.create(idp["user"], url="/Users", **RAW)
    uid = created["id"]
    found = scim.query(User, query_parameters={"filter": idp["lookup"]}, **RAW)
    assert [r["id"] for r in found["Resources"]] == [uid]

    renamed = scim.modify(User, uid, idp["rename"], **RAW)
    assert renamed["name"]["givenName"] == "Augusta"

    group = scim.create({"schemas": [GROUP], "displayName": "Finance"}, url="/Groups", **RAW)
    scim.modify(Group, group["id"], idp["add_member"](uid), **RAW)
    assert list(ScimGroup.objects.get().members.values_list("pk", flat=True)) == [int(uid)]
    scim.modify(Group, group["id"], idp["remove_member"](uid), **RAW)
    assert not ScimGroup.objects.get().members.exists()

    assert scim.modify(User, uid, idp["deactivate"], **RAW)["active"] is False
    assert not PortalUser.objects.get(pk=uid).allow_login
    assert scim.modify(User, uid, idp["reactivate"], **RAW)["active"] is True
    assert PortalUser.objects.get(pk=uid).allow_login

    scim.delete(User, uid)
    assert scim.query(User, uid, raise_scim_errors=False, **RAW)["status"] == "404"
    assert AuditEvent.objects.filter(
        action=AuditAction.USER_DEACTIVATED, actor_label="SCIM: Okta"
    ).exists()
