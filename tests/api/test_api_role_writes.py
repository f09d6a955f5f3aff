"""Role and role group writes through the API: the services of the screens, no escalation."""

import pytest

from audit.models import AuditEvent
from roles.models import Role, RoleGroup
from tests.builders import make_owner, make_role, make_role_group, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def writer(owner, token_for):
    # An integration that administers roles: API write on Roles, and it holds (and so may hand
    # out) API read on Customers.
    return token_for(owner, {"api_roles": "write", "api_customers": "read"})


def test_role_group_writes_need_write_on_api_roles(owner, token_for, writer):
    body = {"name": "Sync readers", "kind": "api", "grants": {"api_customers": "read"}}
    reader = token_for(owner, {"api_roles": "read"})
    assert reader.post("/role-groups", body).status_code == 403
    response = writer.post("/role-groups", body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["grants"] == [{"area": "api_customers", "level": "read"}]
    assert AuditEvent.objects.filter(action="role_group_created", actor_id=writer.user.pk).exists()


def test_role_group_grants_above_the_actor_are_refused(owner, writer):
    body = {"name": "Too much", "kind": "api", "grants": {"api_customers": "write"}}
    response = writer.post("/role-groups", body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "escalation_refused"
    bad = writer.post("/role-groups", {"name": "Bad", "kind": "api", "grants": {"nope": "read"}})
    assert bad.status_code == 422
    assert not RoleGroup.objects.filter(name__in=["Too much", "Bad"]).exists()


def test_role_group_update_is_versioned(owner, writer):
    group = make_role_group(owner, "Readers", kind="api")
    path = f"/role-groups/{group.pk}"
    assert writer.patch(path, {"name": "Renamed"}).status_code == 422
    response = writer.patch(
        path, {"name": "Renamed", "grants": {"api_customers": "read"}, "row_version": 1}
    )
    assert response.status_code == 200, response.content
    assert response.json()["name"] == "Renamed"
    assert response.json()["grants"] == [{"area": "api_customers", "level": "read"}]
    stale = writer.patch(path, {"name": "Again"}, **{"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["error"]["code"] == "stale"


def test_role_writes_and_delete(owner, writer):
    group = make_role_group(owner, "Readers", grants={"api_customers": "read"}, kind="api")
    response = writer.post("/roles", {"name": "Integration", "role_groups": [group.pk]})
    assert response.status_code == 201, response.content
    role_id = response.json()["id"]
    renamed = writer.patch(f"/roles/{role_id}", {"name": "Integrations", "row_version": 1})
    assert renamed.json()["name"] == "Integrations"
    make_user(owner, role=Role.objects.get(pk=role_id))
    in_use = writer.call("DELETE", f"/roles/{role_id}?reason=Unused")
    assert in_use.status_code == 409
    assert in_use.json()["error"]["code"] == "in_use"
    spare = make_role(owner, "Spare")
    assert writer.call("DELETE", f"/roles/{spare.pk}").status_code == 422  # say why
    blank = writer.call("DELETE", f"/roles/{spare.pk}?reason=%20")
    assert blank.status_code == 422
    assert "reason" in blank.json()["error"]["fields"]
    assert writer.call("DELETE", f"/roles/{spare.pk}?reason=Unused").status_code == 204
    assert not Role.objects.filter(pk=spare.pk).exists()
    assert AuditEvent.objects.get(action="role_deleted").reason == "Unused"


def test_roles_cannot_hand_out_groups_above_the_actor_or_of_another_owner(owner, writer):
    strong = make_role_group(owner, "Admins", grants={"users": "full"})
    response = writer.post("/roles", {"name": "Sneaky", "role_groups": [strong.pk]})
    assert response.status_code == 403
    foreign = make_role_group(make_owner(), "Theirs")
    response = writer.post("/roles", {"name": "Sneaky", "role_groups": [foreign.pk]})
    assert response.status_code == 422
    assert writer.call("DELETE", f"/role-groups/{foreign.pk}?reason=Unused").status_code == 404
    assert not Role.objects.filter(name="Sneaky").exists()
