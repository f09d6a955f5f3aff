"""User writes through the API: the same forms, services, guards and audit as the screens."""

import pytest

from accounts.models import User
from audit.models import AuditEvent
from tests.builders import make_owner, make_role, make_role_group, make_update_reason, make_user

pytestmark = pytest.mark.django_db

WRITE = {"api_users": "write"}


@pytest.fixture
def writer(owner, token_for):
    return token_for(owner, WRITE, username="provisioner", privilege_level=5)


NEW = {"username": "nina", "email": "nina@example.test", "first_name": "Nina", "kind": "api"}


def test_create_needs_write_on_api_users(owner, token_for, writer):
    reader = token_for(owner, {"api_users": "read"})
    assert reader.post("/users", NEW).status_code == 403
    app_admin = token_for(
        owner, {}, app_grants={"users": "full"}, kind="interactive", allow_login=True
    )
    assert app_admin.post("/users", NEW).status_code == 403
    response = writer.post("/users", {**NEW, "allow_api_read": True})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["username"] == "nina"
    assert body["kind"] == "api"
    assert body["allow_login"] is False  # an API user never gets the Login flag
    assert body["allow_api_read"] is True
    event = AuditEvent.objects.get(action="user_created")
    assert event.actor_id == writer.user.pk
    assert event.target_id == str(body["id"])


def test_create_refuses_invalid_input_per_field(owner, writer):
    make_user(owner, username="taken")
    response = writer.post(
        "/users", {"username": "Taken", "email": "not an email", "time_zone": "Mars/Olympus"}
    )
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"username", "email", "time_zone"}
    assert writer.post("/users", {"email": "x@example.test"}).status_code == 422
    assert not User.objects.filter(email="x@example.test").exists()


def test_create_refuses_escalation(owner, writer):
    group = make_role_group(owner, grants={"users": "full"})
    role = make_role(owner, groups=[group])
    response = writer.post("/users", {**NEW, "role": role.pk})
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "escalation_refused"
    assert response.json()["error"]["areas"] == ["Users (full; you hold none)"]
    response = writer.post("/users", {**NEW, "privilege_level": 9})
    assert response.status_code == 403
    assert not User.objects.filter(username="nina").exists()


def test_create_refuses_another_owner_s_role(owner, writer):
    foreign = make_role(make_owner())
    response = writer.post("/users", {**NEW, "role": foreign.pk})
    assert response.status_code == 422
    assert set(response.json()["error"]["fields"]) == {"role"}


def test_update_with_row_version_and_reason(owner, writer):
    person = make_user(owner, username="paula", first_name="Paula")
    path = f"/users/{person.pk}"
    body = {"first_name": "Pauline", "reason": "Name change"}
    assert writer.patch(path, body).status_code == 422  # no version: refuse, never guess
    response = writer.patch(path, {**body, "row_version": 1})
    assert response.status_code == 200, response.content
    assert response.json()["first_name"] == "Pauline"
    assert response.json()["row_version"] == 2
    assert response["ETag"] == '"2"'
    event = AuditEvent.objects.get(action="user_changed")
    assert event.changes == {"first_name": ["Paula", "Pauline"]}
    assert event.reason == "Name change"
    assert event.actor_id == writer.user.pk


def test_update_changed_since_read_answers_409(owner, writer):
    person = make_user(owner, username="paula")
    path = f"/users/{person.pk}"
    first = {"last_name": "One", "reason": "x", "row_version": 1}
    assert writer.patch(path, first).status_code == 200
    stale = writer.patch(path, {"last_name": "Two", "reason": "x"}, **{"If-Match": '"1"'})
    assert stale.status_code == 409
    assert stale.json()["error"]["current_row_version"] == 2
    fresh = writer.patch(path, {"last_name": "Two", "reason": "x"}, **{"If-Match": '"2"'})
    assert fresh.status_code == 200
    assert User.objects.get(pk=person.pk).last_name == "Two"


def test_update_reason_from_the_owner_s_list(owner, writer):
    make_update_reason(owner, "Correction")
    person = make_user(owner)
    path = f"/users/{person.pk}"
    refused = writer.patch(path, {"first_name": "A", "reason": "Whim", "row_version": 1})
    assert refused.status_code == 422
    assert set(refused.json()["error"]["fields"]) == {"reason"}
    ok = writer.patch(path, {"first_name": "A", "reason": "correction", "row_version": 1})
    assert ok.status_code == 200
    assert AuditEvent.objects.get(action="user_changed").reason == "Correction"


def test_update_of_another_owner_s_user_answers_404(writer):
    stranger = make_user(make_owner())
    body = {"first_name": "X", "reason": "x", "row_version": 1}
    response = writer.patch(f"/users/{stranger.pk}", body)
    assert response.status_code == 404


def test_the_login_flag_has_its_own_operations(owner, writer):
    person = make_user(owner, username="leaver")
    path = f"/users/{person.pk}"
    body = {"allow_login": False, "reason": "x", "row_version": 1}
    assert writer.patch(path, body).status_code == 422
    response = writer.post(f"{path}/deactivate", {"reason": "Left the company"})
    assert response.status_code == 200
    assert response.json()["allow_login"] is False
    assert writer.post(f"{path}/deactivate", {"reason": "again"}).status_code == 422
    assert AuditEvent.objects.filter(action="user_deactivated", reason="Left the company").exists()
    response = writer.post(f"{path}/reactivate", {"reason": "Came back"})
    assert response.json()["allow_login"] is True


def test_removing_an_api_user_s_flags_stops_its_tokens(owner, token_for, writer):
    robot = token_for(owner, {"api_users": "read"})
    assert robot.get("/me").status_code == 200
    path = f"/users/{robot.user.pk}"
    body = {"allow_api_read": False, "allow_api_write": False, "reason": "Off", "row_version": 1}
    assert writer.patch(path, body).status_code == 200
    assert robot.get("/me").status_code == 401
