"""Each endpoint: allowed with the right API level, 403 one level below, application grants never
count, another owner's objects 404, and the same answers as the screens."""

import pytest
from django.urls import reverse

from roles import permissions
from roles.versions import bump_user
from tests.builders import (
    make_api_user,
    make_override,
    make_owner,
    make_role,
    make_role_group,
    make_token,
    make_user,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(owner):
    """A small organisation: a role with two groups and a person holding it."""
    group = make_role_group(owner, "Clerks", grants={"customers": "read", "users": "read"})
    api_group = make_role_group(owner, "Sync", grants={"api_customers": "read"}, kind="api")
    role = make_role(owner, "Clerk", groups=[group, api_group])
    person = make_user(owner, role=role, username="clerk", allow_api_read=True)
    return {"group": group, "role": role, "person": person}


def reads(world):
    person, group, role = world["person"], world["group"], world["role"]
    return [
        ("GET", "/users", None, "api_users"),
        ("GET", f"/users/{person.pk}", None, "api_users"),
        ("GET", f"/users/{person.pk}/permissions", None, "api_users"),
        ("GET", "/areas", None, "api_roles"),
        ("GET", "/role-groups", None, "api_roles"),
        ("GET", f"/role-groups/{group.pk}", None, "api_roles"),
        ("GET", "/roles", None, "api_roles"),
        ("GET", f"/roles/{role.pk}", None, "api_roles"),
        ("GET", "/audit/events", None, "api_audit_events"),
        (
            "POST",
            "/authz/check",
            {"user": person.pk, "area": "customers", "level": "read"},
            "api_authorization",
        ),
    ]


# Application areas equivalent to each API area: holding them at top level never opens the API.
APP_EQUIVALENT = {
    "api_users": {"users": "full"},
    "api_roles": {"settings_user_groups": "full"},
    "api_audit_events": {"user_activity": "full"},
    "api_authorization": {"users": "full"},
}


def test_each_read_endpoint_needs_its_api_area_at_read(owner, world, token_for):
    for method, path, body, area in reads(world):
        allowed = token_for(owner, {area: "read"})
        response = allowed.call(method, path, body)
        assert response.status_code == 200, (path, response.content)
        below = token_for(owner, {})
        response = below.call(method, path, body)
        assert response.status_code == 403, path
        assert response.json()["error"]["code"] == "forbidden"


def test_application_grants_never_count(owner, world, token_for):
    for method, path, body, area in reads(world):
        caller = token_for(
            owner,
            {},
            app_grants=APP_EQUIVALENT[area],
            kind="interactive",
            allow_login=True,
            privilege_level=10,
        )
        assert caller.call(method, path, body).status_code == 403, path


def test_token_scope_narrows_below_its_user(owner, world, token_for):
    grants = {"api_users": "write", "api_roles": "read"}
    narrowed = token_for(owner, grants, token_fields={"areas": ["api_roles"]})
    assert narrowed.get("/roles").status_code == 200
    assert narrowed.get("/users").status_code == 403
    assert narrowed.get("/me").json()["permissions"] == {"api_roles": "read"}
    read_only = token_for(owner, grants, token_fields={"read_only": True})
    assert read_only.get("/me").json()["permissions"] == {"api_roles": "read", "api_users": "read"}


def test_a_later_loss_of_the_user_is_felt_at_once(owner, world, token_for):
    caller = token_for(owner, {"api_users": "read"})
    assert caller.get("/users").status_code == 200
    group = caller.user.role.role_groups.get()
    group.grants.update(level="none")
    bump_user(caller.user)
    assert caller.get("/users").status_code == 403
    make_override(caller.user, "api_users", "read")
    bump_user(caller.user)
    assert caller.get("/users").status_code == 200


def test_another_owner_s_objects_answer_404(owner, world, token_for):
    everything = dict.fromkeys(APP_EQUIVALENT, "read")
    stranger = token_for(make_owner(), everything)
    person, group, role = world["person"], world["group"], world["role"]
    for path in (
        f"/users/{person.pk}",
        f"/users/{person.pk}/permissions",
        f"/role-groups/{group.pk}",
        f"/roles/{role.pk}",
    ):
        response = stranger.get(path)
        assert response.status_code == 404, path
        assert response.json()["error"]["code"] == "not_found"
    for ref in (person.pk, person.username):
        body = {"user": ref, "area": "customers", "level": "read"}
        assert stranger.post("/authz/check", body).status_code == 404
    assert stranger.get("/users").json()["items"] == [stranger.get("/me").json()["user"]]
    assert stranger.get("/roles").json()["items"] == [
        {
            "id": stranger.user.role_id,
            "name": stranger.user.role.name,
            "description": "",
            "row_version": 1,
            "role_groups": [g.pk for g in stranger.user.role.role_groups.all()],
        }
    ]


def test_users_list_filters_and_cursor_pagination(owner, world, token_for):
    caller = token_for(owner, {"api_users": "read"}, username="robot")
    for n in range(5):
        make_user(owner, username=f"person{n}")
    seen, cursor = [], None
    while True:
        query = "/users?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = caller.get(query).json()
        seen += [u["username"] for u in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 7
    assert [u["username"] for u in caller.get("/users?kind=api").json()["items"]] == ["robot"]
    assert [u["username"] for u in caller.get("/users?q=CLERK").json()["items"]] == ["clerk"]
    role = world["role"].pk
    assert [u["username"] for u in caller.get(f"/users?role={role}").json()["items"]] == ["clerk"]
    no_login = caller.get("/users?login=false").json()["items"]
    assert [u["username"] for u in no_login] == ["robot"]


def test_user_read_carries_its_row_version_as_etag(owner, world, token_for):
    caller = token_for(owner, {"api_users": "read"})
    response = caller.get(f"/users/{world['person'].pk}")
    assert response["ETag"] == '"1"'
    assert response.json()["row_version"] == 1


def test_permissions_match_the_my_access_screen(owner, world, token_for, signed_in):
    person = world["person"]
    make_override(person, "customers", "full", reason="Month end")
    bump_user(person)
    caller = token_for(owner, {"api_users": "read"})
    body = caller.get(f"/users/{person.pk}/permissions").json()
    screen = signed_in(person).get(reverse("roles:my_access"))
    for channel, decisions in (
        ("application", screen.context["granted"]),
        ("api", screen.context["api_granted"]),
    ):
        assert [
            (d["area"], d["level"], [r["text"] for r in d["because"]]) for d in body[channel]
        ] == [(d.area.code, d.level, [r.text for r in d.because]) for d in decisions]
    assert ("customers", "full") in [(d["area"], d["level"]) for d in body["application"]]


@pytest.mark.parametrize(
    ("ref", "area", "level", "channel", "allowed"),
    [
        ("clerk", "customers", "read", "application", True),
        ("clerk", "customers", "full", "application", False),
        ("clerk", "users", "read", "application", True),
        ("clerk", "api_customers", "read", "api", True),
        ("clerk", "api_customers", "write", "api", False),
        ("clerk", "invoices", "read", "application", False),
    ],
)
def test_authz_check_answers_like_the_resolver(
    owner, world, token_for, ref, area, level, channel, allowed
):
    caller = token_for(owner, {"api_authorization": "read"})
    body = {"user": ref, "area": area, "level": level, "channel": channel}
    answer = caller.post("/authz/check", body).json()
    decision = permissions.explained(world["person"], channel).explain(area)
    assert answer["allowed"] is allowed
    assert answer["level"] == decision.level
    assert [r["text"] for r in answer["because"]] == [r.text for r in decision.because]
    by_id = caller.post("/authz/check", {**body, "user": world["person"].pk}).json()
    assert by_id == answer
    quick = caller.post("/authz/check", {**body, "explain": False}).json()
    assert quick == {"allowed": allowed, "level": decision.level, "because": []}


def test_authz_check_without_explanation_is_answered_from_the_cache(owner, world, token_for):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    caller = token_for(owner, {"api_authorization": "read"})
    body = {"user": "clerk", "area": "users", "level": "read", "explain": False}
    assert caller.post("/authz/check", body).json()["allowed"] is True  # fills the cache
    with CaptureQueriesContext(connection) as warm:
        assert caller.post("/authz/check", body).json()["allowed"] is True
    with CaptureQueriesContext(connection) as explained:
        caller.post("/authz/check", {**body, "explain": True})
    tables = " ".join(q["sql"] for q in warm.captured_queries)
    assert "roles_grant" not in tables and "roles_permissionoverride" not in tables
    assert len(explained.captured_queries) == len(warm.captured_queries) + 2
    make_override(world["person"], "users", "none", reason="Suspended")
    bump_user(world["person"])  # as the override service does: the cached entry is not used again
    assert caller.post("/authz/check", body).json() == {
        "allowed": False,
        "level": "none",
        "because": [],
    }


def test_authz_check_refuses_areas_of_the_other_channel_and_unknown_levels(owner, world, token_for):
    caller = token_for(owner, {"api_authorization": "read"})
    person = world["person"].pk
    bad_channel = {"user": person, "area": "customers", "level": "read", "channel": "api"}
    assert caller.post("/authz/check", bad_channel).json()["error"]["fields"] == {
        "area": "Customers is an area of the application channel."
    }
    bad_level = {"user": person, "area": "customers", "level": "write"}
    assert set(caller.post("/authz/check", bad_level).json()["error"]["fields"]) == {"level"}
    assert caller.post("/authz/check", {**bad_level, "user": "nobody"}).status_code == 422


def test_audit_events_are_the_owner_s_filtered_and_paginated(owner, world, token_for):
    caller = token_for(owner, {"api_audit_events": "read"})
    stranger_user = make_api_user(make_owner(), api_grants={"api_users": "read"})
    make_token(stranger_user)
    events = caller.get("/audit/events?limit=1")
    body = events.json()
    assert len(body["items"]) == 1
    assert body["items"][0]["action"] == "token_created"
    assert body["items"][0]["subject_user_id"] == caller.user.pk
    assert body["next_cursor"] is None
    make_token(caller.user, name="Second")
    first = caller.get("/audit/events?limit=1").json()
    second = caller.get(f"/audit/events?limit=1&cursor={first['next_cursor']}").json()
    assert first["items"][0]["id"] > second["items"][0]["id"]
    assert second["next_cursor"] is None
    filtered = caller.get(f"/audit/events?action=token_created&actor={caller.user.pk}").json()
    assert len(filtered["items"]) == 2
    assert caller.get("/audit/events?since=2999-01-01T00:00:00Z").json()["items"] == []
    assert caller.get("/audit/events?until=2000-01-01T00:00:00").json()["items"] == []


def test_authz_check_gives_the_same_answer_as_the_user_permissions_screen(
    owner, world, token_for, signed_in, admin_user
):
    person = world["person"]
    make_override(person, "invoices", "read", reason="Audit week")
    bump_user(person)
    screen = signed_in(admin_user).get(reverse("roles:user_permissions", args=[person.pk]))
    decisions = [d for section in screen.context["sections"] for d in section["decisions"]]
    # Every area that holds a level or a reason, and a sample of the closed ones.
    decisions = [
        d for i, d in enumerate(decisions) if d.level != "none" or d.because or i % 10 == 0
    ]
    caller = token_for(owner, {"api_authorization": "read"})
    for decision in decisions:
        body = {
            "user": person.pk,
            "area": decision.area.code,
            "level": decision.area.levels[1],
            "channel": decision.area.channel,
        }
        answer = caller.post("/authz/check", body).json()
        assert answer["level"] == decision.level, decision.area.code
        assert answer["allowed"] == (decision.level != "none")
        assert [r["text"] for r in answer["because"]] == [r.text for r in decision.because]


def writes(world):
    person, group, role = world["person"], world["group"], world["role"]
    return [
        ("POST", "/users", {"username": "new", "email": "new@example.test"}, "api_users"),
        ("PATCH", f"/users/{person.pk}", {"reason": "x", "row_version": 1}, "api_users"),
        ("POST", f"/users/{person.pk}/deactivate", {"reason": "x"}, "api_users"),
        ("POST", f"/users/{person.pk}/reactivate", {"reason": "x"}, "api_users"),
        ("POST", "/role-groups", {"name": "New"}, "api_roles"),
        ("PATCH", f"/role-groups/{group.pk}", {"row_version": 1}, "api_roles"),
        ("DELETE", f"/role-groups/{group.pk}?reason=Unused", None, "api_roles"),
        ("POST", "/roles", {"name": "New"}, "api_roles"),
        ("PATCH", f"/roles/{role.pk}", {"row_version": 1}, "api_roles"),
        ("DELETE", f"/roles/{role.pk}?reason=Unused", None, "api_roles"),
    ]


def test_each_write_endpoint_needs_its_api_area_at_write(owner, world, token_for):
    for method, path, body, area in writes(world):
        below = token_for(owner, {area: "read"})
        response = below.call(method, path, body)
        assert response.status_code == 403, (method, path)
        app_admin = token_for(
            owner,
            {area: "read"},
            app_grants={a: "full" for grants in APP_EQUIVALENT.values() for a in grants},
            kind="interactive",
            allow_login=True,
            privilege_level=10,
        )
        assert app_admin.call(method, path, body).status_code == 403, (method, path)
        allowed = token_for(owner, {area: "write"}, privilege_level=10)
        response = allowed.call(method, path, body)
        assert response.status_code not in {401, 403}, (method, path, response.content)
