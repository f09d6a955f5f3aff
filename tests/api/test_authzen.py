"""AuthZEN 1.0 decisions: the specification's shapes, the portal's resolver behind them."""

import datetime
import json
from unittest import mock

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from accounts.tokens import services as tokens
from audit.choices import AuditAction
from audit.models import AuditEvent
from roles import catalog
from roles import services as role_services
from roles.models import PermissionOverride
from tests.builders import make_api_user, make_owner, make_token, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture
def pdp(client, owner):
    """A client holding a token with the decision permission (API Authorization read)."""
    caller = make_api_user(owner, api_grants={catalog.API_AUTHZ: "read"}, username="gateway")
    text = make_token(caller)[1]

    def post(path, body, *, token=text, raw=None):
        return client.post(
            f"/access/v1/{path}",
            data=raw if raw is not None else json.dumps(body),
            content_type="application/json",
            headers={"Authorization": f"Bearer {token}"} if token else {},
        )

    return post


@pytest.fixture
def clerk(owner):
    return make_user(owner, username="clara", grants={"invoices": "full", "payments": "read"})


def question(user="clara", area="invoices", level="full", **context):
    body = {
        "subject": {"type": "user", "id": user},
        "resource": {"type": "area", "id": area},
        "action": {"name": level},
    }
    if context:
        body["context"] = context
    return body


def test_the_discovery_document_names_the_endpoints(client):
    response = client.get("/.well-known/authzen-configuration")
    assert response.status_code == 200
    body = response.json()
    assert body["access_evaluation_endpoint"].endswith("/access/v1/evaluation")
    assert body["access_evaluations_endpoint"].endswith("/access/v1/evaluations")
    assert body["policy_decision_point"]


def test_one_evaluation_answers_as_the_resolver(pdp, clerk):
    assert pdp("evaluation", question()).json() == {"decision": True}
    denied = pdp("evaluation", question(area="payments", level="full")).json()
    assert denied["decision"] is False
    assert denied["context"]["level"] == "read"
    by_id = pdp("evaluation", question(user=str(clerk.pk))).json()
    assert by_id == {"decision": True}
    explained = pdp("evaluation", question(explain=True)).json()
    assert explained["decision"] is True
    assert explained["context"]["reasons"][0]["kind"] == "group"


@pytest.mark.parametrize(
    "body, reason",
    [
        (question(user="nobody"), "unknown_subject"),
        (question(area="nowhere"), "unknown_resource"),
        (question(level="execute"), "unknown_action"),
        (question(channel="api"), "other_channel"),
        ({**question(), "subject": {"type": "group", "id": "x"}}, "unsupported_subject"),
        ({**question(), "resource": {"type": "document", "id": "x"}}, "unknown_resource"),
    ],
)
def test_questions_about_nothing_the_portal_grants_are_denied_with_a_reason(
    pdp, clerk, body, reason
):
    answer = pdp("evaluation", body).json()
    assert answer["decision"] is False
    assert answer["context"]["id"] == reason


def test_another_owners_user_is_unknown(pdp):
    stranger = make_user(make_owner(), username="sam", grants={"invoices": "full"})
    assert pdp("evaluation", question(user=stranger.username)).json()["decision"] is False
    assert pdp("evaluation", question(user=str(stranger.pk))).json()["decision"] is False


def test_evaluations_apply_defaults_and_each_entry_overrides_them(pdp, clerk):
    body = {
        "subject": {"type": "user", "id": "clara"},
        "resource": {"type": "area", "id": "invoices"},
        "evaluations": [
            {"action": {"name": "read"}},
            {"action": {"name": "full"}},
            {"resource": {"type": "area", "id": "payments"}, "action": {"name": "full"}},
            {"resource": {"type": "area", "id": "payments"}, "action": {"name": "read"}},
        ],
    }
    answers = pdp("evaluations", body).json()["evaluations"]
    assert [a["decision"] for a in answers] == [True, True, False, True]


@pytest.mark.parametrize(
    "semantic, expected",
    [
        ("execute_all", [True, False, True]),
        ("deny_on_first_deny", [True, False]),
        ("permit_on_first_permit", [True]),
    ],
)
def test_evaluation_semantics(pdp, clerk, semantic, expected):
    body = {
        "subject": {"type": "user", "id": "clara"},
        "action": {"name": "full"},
        "evaluations": [
            {"resource": {"type": "area", "id": "invoices"}},
            {"resource": {"type": "area", "id": "payments"}},
            {"resource": {"type": "area", "id": "invoices"}},
        ],
        "options": {"evaluations_semantic": semantic},
    }
    answers = pdp("evaluations", body).json()["evaluations"]
    assert [a["decision"] for a in answers] == expected


def test_evaluations_without_a_list_answer_as_one_evaluation(pdp, clerk):
    assert pdp("evaluations", question()).json() == {"decision": True}


def test_a_batch_loads_its_users_at_once(pdp, owner, clerk, django_assert_max_num_queries):
    others = [make_user(owner, username=f"u{n}", grants={"invoices": "read"}) for n in range(5)]
    body = {
        "resource": {"type": "area", "id": "invoices"},
        "action": {"name": "read"},
        "evaluations": [{"subject": {"type": "user", "id": u.username}} for u in others],
    }
    pdp("evaluations", body)  # warms the permission cache of each user
    # Token check and its touch, the users in one query; cached permissions cost nothing.
    with django_assert_max_num_queries(6):
        answers = pdp("evaluations", body).json()["evaluations"]
    assert all(a["decision"] for a in answers)


def test_refusals_are_json_never_html(pdp, owner, clerk):
    no_token = pdp("evaluation", question(), token="")
    assert no_token.status_code == 401 and no_token.json()["error"]["code"] == "unauthenticated"
    weak = make_api_user(owner, api_grants={catalog.API_USERS: "read"}, username="weak")
    forbidden = pdp("evaluation", question(), token=make_token(weak)[1])
    assert forbidden.status_code == 403
    assert pdp("evaluation", None, raw="{not json").status_code in (400, 422)
    missing = pdp("evaluation", {"subject": {"type": "user", "id": "clara"}})
    assert missing.status_code == 422 and "fields" in missing.json()["error"]
    too_many = {
        **question(),
        "evaluations": [{"action": {"name": "read"}}] * 501,
    }
    assert pdp("evaluations", too_many).status_code == 422
    incomplete = pdp("evaluations", {"evaluations": [{"action": {"name": "read"}}]})
    assert incomplete.status_code == 422
    assert "evaluations.0" in incomplete.json()["error"]["fields"]
    unknown = pdp("nowhere", question())
    assert unknown.status_code == 404 and unknown["Content-Type"] == "application/json"


# The caller's token is remembered between decisions, never past a change that decides its use


@pytest.fixture
def gateway(owner):
    caller = make_api_user(owner, api_grants={catalog.API_AUTHZ: "read"}, username="gw")
    token, text = make_token(caller)
    return caller, token, text


def test_a_remembered_token_costs_one_small_query(pdp, clerk, gateway):
    caller, token, text = gateway
    assert pdp("evaluation", question(), token=text).json() == {"decision": True}
    with CaptureQueriesContext(connection) as seen:
        assert pdp("evaluation", question(), token=text).json() == {"decision": True}
    facts, subject = (q["sql"] for q in seen.captured_queries)
    assert facts.startswith("SELECT t.revoked_at") and "WHERE t.id = " in facts
    assert '"accounts_user"."username"' in subject
    # The narrow subject query: a decision reads no password hash, no profile.
    assert '"accounts_user"."password"' not in subject


def test_a_revoked_remembered_token_is_refused_at_its_next_request(pdp, clerk, gateway, owner):
    caller, token, text = gateway
    assert pdp("evaluation", question(), token=text).status_code == 200
    tokens.revoke_token(token, actor=caller, reason="Leaked")
    refused = pdp("evaluation", question(), token=text)
    assert refused.status_code == 401
    event = AuditEvent.objects.filter(action=AuditAction.TOKEN_REFUSED).get()
    assert event.context["reason"] == tokens.TokenRefused.REVOKED


def test_a_remembered_token_follows_its_users_flags_and_permissions(pdp, clerk, gateway, owner):
    caller, token, text = gateway
    admin = make_user(owner, grants={catalog.USERS: "full"}, privilege_level=9)
    assert pdp("evaluation", question(), token=text).status_code == 200
    role_services.set_override(
        caller, catalog.API_AUTHZ, catalog.NONE, actor=admin, reason="No more decisions"
    )
    assert pdp("evaluation", question(), token=text).status_code == 403
    PermissionOverride.objects.filter(user=caller).delete()
    User.objects.filter(pk=caller.pk).update(permissions_version=F("permissions_version") + 1)
    assert pdp("evaluation", question(), token=text).status_code == 200
    # Any write of the flags counts, even one that bumps no version.
    User.objects.filter(pk=caller.pk).update(allow_api_read=False, allow_api_write=False)
    assert pdp("evaluation", question(), token=text).status_code == 401


def test_a_remembered_token_expires_and_a_wrong_secret_never_matches(pdp, clerk, gateway):
    caller, token, text = gateway
    assert pdp("evaluation", question(), token=text).status_code == 200
    forged = f"ba_{token.prefix}_{'A' * 43}"
    assert forged != text
    assert pdp("evaluation", question(), token=forged).status_code == 401
    later = timezone.now() + datetime.timedelta(days=31)
    with mock.patch("django.utils.timezone.now", return_value=later):
        assert pdp("evaluation", question(), token=text).status_code == 401
