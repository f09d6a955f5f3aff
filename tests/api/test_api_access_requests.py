"""Just-in-time access through the API: the services of the screens, the token's user as the
person; refusals in the API's JSON shape."""

import pytest

from audit.models import AuditEvent
from roles import catalog, elevations
from roles.choices import RequestState
from roles.models import AccessRequest
from tests.api.conftest import ApiClient
from tests.builders import make_owner, make_role, make_role_group, make_token, make_user

pytestmark = pytest.mark.django_db

API_FLAGS = {"allow_api_read": True, "allow_api_write": True}


@pytest.fixture
def payments(owner):
    return make_role_group(owner, "Payment releasers", {"payments": "full"})


def person(client, owner, username, *, app=None, api=None, eligible=(), token_fields=None):
    """An interactive user with the API flags and a token: application grants `app`, API grants
    `api`, eligible for `eligible`."""
    groups = [make_role_group(owner, grants=app or {})]
    if api:
        groups.append(make_role_group(owner, grants=api, kind="api"))
    role = make_role(owner, groups=groups)
    role.eligible_role_groups.set(eligible)
    user = make_user(owner, username=username, role=role, privilege_level=8, **API_FLAGS)
    _, text = make_token(user, **(token_fields or {}))
    api_client = ApiClient(client, text)
    api_client.user = user
    return api_client


@pytest.fixture
def clerk(client, owner, payments):
    return person(client, owner, "clara", app={"invoices": "full"}, eligible=[payments])


@pytest.fixture
def approver(client, owner):
    return person(
        client,
        owner,
        "anna",
        app={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "full"},
        api={catalog.API_ACCESS_REQUESTS: catalog.WRITE},
    )


def body(group, **more):
    return {"role_group": group.pk, "hours": 2, "justification": "Month-end run", **more}


def test_a_person_asks_for_eligible_access_through_the_api(clerk, payments):
    response = clerk.post("/access-requests", body(payments, ticket="FIN-42"))
    assert response.status_code == 201, response.content
    made = response.json()
    assert made["state"] == "pending" and made["status"] == "pending"
    assert made["role_group_name"] == "Payment releasers" and made["ticket"] == "FIN-42"
    assert made["user"] == clerk.user.pk
    assert AuditEvent.objects.filter(action="access_requested", actor_id=clerk.user.pk).exists()
    again = clerk.post("/access-requests", body(payments))
    assert again.status_code == 422
    assert "already asked" in again.json()["error"]["fields"]["role_group"]


def test_bad_requests_answer_422_per_field_and_save_nothing(client, owner, clerk, payments):
    cases = [
        (body(payments, hours=9), "hours"),  # the owner's maximum is 8
        (body(payments, hours=0), "hours"),
        (body(payments, justification="  "), "justification"),
        (body(payments, starts_at="2020-01-01T10:00:00Z"), "starts_at"),
        (body(payments, starts_at="2030-01-01T10:00:00"), "starts_at"),  # no time zone
        (body(make_role_group(owner, "Not eligible")), "role_group"),
        (body(make_role_group(make_owner(), "Elsewhere")), "role_group"),
    ]
    for payload, field in cases:
        response = clerk.post("/access-requests", payload)
        assert response.status_code == 422, (payload, response.content)
        error = response.json()["error"]
        assert error["code"] == "invalid" and field in error["fields"], (payload, error)
    assert not AccessRequest.objects.exists()


def test_a_read_only_token_may_not_ask(client, owner, payments):
    reader = person(client, owner, "rob", eligible=[payments], token_fields={"read_only": True})
    response = reader.post("/access-requests", body(payments))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert not AccessRequest.objects.exists()


def test_listing_own_requests_and_with_read_everyones(client, owner, clerk, approver, payments):
    mine = clerk.post("/access-requests", body(payments)).json()
    own = clerk.get("/access-requests").json()
    assert [r["id"] for r in own["items"]] == [mine["id"]] and own["next_before"] is None
    assert approver.get("/access-requests").json()["items"] == []
    assert clerk.get("/access-requests?scope=organisation").status_code == 403
    everyone = approver.get("/access-requests?scope=organisation&state=pending").json()
    assert [r["id"] for r in everyone["items"]] == [mine["id"]]
    assert approver.get("/access-requests?scope=organisation&state=denied").json()["items"] == []
    assert approver.get(f"/access-requests/{mine['id']}").status_code == 200
    stranger = person(client, make_owner(), "sam", api={catalog.API_ACCESS_REQUESTS: "write"})
    assert stranger.get(f"/access-requests/{mine['id']}").status_code == 404


def test_approve_needs_write_and_a_second_decision_answers_409(
    client, owner, clerk, approver, payments
):
    made = clerk.post("/access-requests", body(payments, hours=4)).json()
    path = f"/access-requests/{made['id']}"
    reader = person(
        client,
        owner,
        "rita",
        app={catalog.ACCESS_REQUESTS: catalog.APPROVE, "payments": "full"},
        api={catalog.API_ACCESS_REQUESTS: catalog.READ},
    )
    assert reader.post(f"{path}/approve", {}).status_code == 403
    assert clerk.post(f"{path}/approve", {}).status_code == 403  # no API write either
    too_long = approver.post(f"{path}/approve", {"hours": 5})
    assert too_long.status_code == 422 and "hours" in too_long.json()["error"]["fields"]
    response = approver.post(f"{path}/approve", {"hours": 1, "note": "One hour"})
    assert response.status_code == 200, response.content
    approved = response.json()
    assert approved["state"] == "approved" and approved["status"] == "active"
    assert approved["decided_by"] == approver.user.pk and approved["decision_reason"] == "One hour"
    late = approver.post(f"{path}/deny", {"reason": "Too late"})
    assert late.status_code == 409
    assert "already approved" in late.json()["error"]["message"]
    assert approver.post("/access-requests/999999/approve", {}).status_code == 404


def test_nobody_approves_their_own_request_through_the_api(client, owner, payments):
    both = person(
        client,
        owner,
        "bo",
        app={catalog.ACCESS_REQUESTS: catalog.APPROVE, "invoices": "full"},
        api={catalog.API_ACCESS_REQUESTS: catalog.WRITE},
        eligible=[payments],
    )
    made = both.post("/access-requests", body(payments)).json()
    response = both.post(f"/access-requests/{made['id']}/approve", {})
    assert response.status_code == 403
    assert "own request" in response.json()["error"]["message"]
    assert AccessRequest.objects.get().state == RequestState.PENDING


def test_deny_needs_a_reason(clerk, approver, payments):
    made = clerk.post("/access-requests", body(payments)).json()
    path = f"/access-requests/{made['id']}/deny"
    missing = approver.post(path, {"reason": ""})
    assert missing.status_code == 422 and "reason" in missing.json()["error"]["fields"]
    denied = approver.post(path, {"reason": "Not this month"}).json()
    assert denied["state"] == "denied" and denied["decision_reason"] == "Not this month"


def test_withdraw_own_and_end_own_or_someone_elses(client, owner, clerk, approver, payments):
    made = clerk.post("/access-requests", body(payments)).json()
    assert approver.post(f"/access-requests/{made['id']}/withdraw").status_code == 404
    withdrawn = clerk.post(f"/access-requests/{made['id']}/withdraw")
    assert withdrawn.status_code == 200 and withdrawn.json()["state"] == "withdrawn"
    assert clerk.post(f"/access-requests/{made['id']}/withdraw").status_code == 409

    active = elevations.approve(
        elevations.request_access(clerk.user, payments, justification="Again", hours=2),
        actor=approver.user,
    )
    path = f"/access-requests/{active.pk}/end"
    assert approver.post(path, {"reason": ""}).status_code == 422
    ended = approver.post(path, {"reason": "Run finished"})
    assert ended.status_code == 200 and ended.json()["status"] == "ended"
    assert ended.json()["ended_by"] == approver.user.pk
    assert clerk.post(path, {}).status_code == 409  # not in force any more
    assert AuditEvent.objects.filter(action="elevation_revoked").count() == 1


def test_the_operations_are_in_the_openapi_document(api):
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    assert set(paths["/api/v1/access-requests"]) == {"get", "post"}
    for action in ("approve", "deny", "withdraw", "end"):
        assert "post" in paths[f"/api/v1/access-requests/{{request_id}}/{action}"]
