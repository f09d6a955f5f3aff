"""Bearer authentication of the JSON API: who may call it, and the JSON shape of refusals."""

import datetime
from unittest import mock

import pytest
from django.utils import timezone

from accounts.tokens import services as tokens
from audit.models import AuditEvent

pytestmark = pytest.mark.django_db

GRANTS = {"api_users": "read"}


def assert_error(response, status, code):
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def test_no_token_answers_401(api):
    error = assert_error(api.get("/me"), 401, "unauthenticated")
    assert error["message"] == "Missing, invalid, expired or revoked token."


def test_a_session_cookie_does_not_authenticate_the_api(api, signed_in, admin_user):
    signed_in(admin_user)
    response = api.get("/users")
    assert_error(response, 401, "unauthenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    "header", ["Bearer nonsense", "Bearer ba_00000000_" + "A" * 43, "Basic YTpi", "Bearer "]
)
def test_bad_tokens_answer_401(api, header):
    response = api.client.get("/api/v1/me", headers={"Authorization": header})
    assert_error(response, 401, "unauthenticated")


def test_a_valid_token_authenticates(owner, token_for):
    caller = token_for(owner, GRANTS)
    response = caller.get("/me")
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["id"] == caller.user.pk
    assert body["token"]["prefix"] == caller.token.prefix
    assert body["permissions"] == {"api_users": "read"}


def test_revoked_expired_and_foreign_network_tokens_answer_401_with_one_message(owner, token_for):
    caller = token_for(owner, GRANTS)
    messages = set()
    tokens.revoke_token(caller.token, actor=caller.user, reason="")
    messages.add(assert_error(caller.get("/me"), 401, "unauthenticated")["message"])

    expiring = token_for(owner, GRANTS, token_fields={"days": 1})
    later = timezone.now() + datetime.timedelta(days=2)
    with mock.patch("django.utils.timezone.now", return_value=later):
        messages.add(assert_error(expiring.get("/me"), 401, "unauthenticated")["message"])

    fenced = token_for(owner, GRANTS, token_fields={"allowed_networks": ["192.0.2.0/24"]})
    messages.add(assert_error(fenced.get("/me"), 401, "unauthenticated")["message"])
    assert (
        fenced.client.get(
            "/api/v1/me",
            headers={"Authorization": f"Bearer {fenced.text}"},
            REMOTE_ADDR="192.0.2.9",
        ).status_code
        == 200
    )

    assert len(messages) == 1
    reasons = set(
        AuditEvent.objects.filter(action="token_refused").values_list("context__reason", flat=True)
    )
    assert reasons == {"revoked", "expired", "network"}


def test_forwarded_for_is_trusted_only_behind_a_configured_proxy(owner, token_for, settings):
    fenced = token_for(owner, GRANTS, token_fields={"allowed_networks": ["192.0.2.0/24"]})
    forged = {"Authorization": f"Bearer {fenced.text}", "X-Forwarded-For": "192.0.2.9"}
    assert fenced.client.get("/api/v1/me", headers=forged).status_code == 401
    settings.TRUSTED_PROXY_COUNT = 1
    assert fenced.client.get("/api/v1/me", headers=forged).status_code == 200


def test_removing_the_api_flag_answers_401_at_once(owner, token_for):
    caller = token_for(owner, GRANTS)
    assert caller.get("/me").status_code == 200
    type(caller.user).objects.filter(pk=caller.user.pk).update(
        allow_api_read=False, allow_api_write=False
    )
    assert_error(caller.get("/me"), 401, "unauthenticated")


def test_rate_limit_per_token_answers_429_with_retry_after(owner, token_for, settings):
    settings.API_RATE_LIMIT = "2/minute"
    caller = token_for(owner, GRANTS)
    other = token_for(owner, GRANTS)
    window_start = 1_800_000_000  # a multiple of 60: the clock stays inside one window
    with mock.patch("billing_access.api.time.time", return_value=window_start + 15):
        assert caller.get("/me").status_code == 200
        assert caller.get("/me").status_code == 200
        response = caller.get("/me")
        assert_error(response, 429, "rate_limited")
        assert response["Retry-After"] == "45"
        assert other.get("/me").status_code == 200
    with mock.patch("billing_access.api.time.time", return_value=window_start + 60):
        assert caller.get("/me").status_code == 200


def test_unknown_api_path_answers_json_404(owner, token_for):
    caller = token_for(owner, GRANTS)
    assert_error(caller.get("/no/such/thing"), 404, "not_found")


def test_bad_json_body_answers_400(owner, token_for):
    caller = token_for(owner, {"api_authorization": "read"})
    response = caller.client.post(
        "/api/v1/authz/check",
        data="{not json",
        content_type="application/json",
        headers={"Authorization": f"Bearer {caller.text}"},
    )
    assert_error(response, 400, "bad_request")


def test_invalid_input_answers_422_per_field(owner, token_for):
    caller = token_for(owner, {"api_authorization": "read", "api_users": "read"})
    error = assert_error(caller.post("/authz/check", {"user": 1, "level": 3}), 422, "invalid")
    assert set(error["fields"]) >= {"area", "level"}
    error = assert_error(caller.get("/users?limit=0&kind=robot"), 422, "invalid")
    assert set(error["fields"]) == {"limit", "kind"}
    error = assert_error(caller.get("/users?cursor=zzz"), 422, "invalid")
    assert set(error["fields"]) == {"cursor"}


def test_openapi_document_and_docs_page_are_served_without_a_token(client):
    document = client.get("/api/v1/openapi.json")
    assert document.status_code == 200
    schema = document.json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/authz/check" in schema["paths"]
    assert schema["components"]["securitySchemes"]["BearerToken"]["scheme"] == "bearer"
    docs = client.get("/api/v1/docs")
    assert docs.status_code == 200
    assert b"/api/v1/authz/check" in docs.content
    assert b"cdn" not in docs.content.lower()
    assert "script-src 'self'" in docs["Content-Security-Policy"]
