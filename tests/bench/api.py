"""The JSON API over HTTP for `make bench`: POST /authz/check (with and without the explanation),
GET /me, and the AuthZEN decisions (one evaluation; a batch of 100) with a bearer token.

Runs against gunicorn (2 workers) with wrk like the screens; the benchmark's server runs with the
per-token rate limit off (API_RATE_LIMIT=0/minute) so that the figures measure the work, not the
limiter.
"""

from __future__ import annotations

import datetime
import json

from django.utils import timezone

from accounts.models import User
from accounts.tokens import services as tokens
from roles import catalog
from roles.models import Grant, Role, RoleGroup

BATCH = 100
AUTHZEN_ONE = "AuthZEN POST /access/v1/evaluation"
AUTHZEN_BATCH = f"AuthZEN POST /access/v1/evaluations ({BATCH})"

LUA = """wrk.method = "{method}"
wrk.headers["Authorization"] = "Bearer {token}"
wrk.headers["Content-Type"] = "application/json"
{body}
"""


def bench_token(owner) -> str:
    """Return a fresh token of the owner's benchmark API user (created on first use)."""
    group, _ = RoleGroup.objects.get_or_create(owner=owner, name="Bench API", kind="api")
    for area in ("api_authorization", "api_users"):
        Grant.objects.get_or_create(role_group=group, area=area, defaults={"level": "read"})
    role, _ = Role.objects.get_or_create(owner=owner, name="Bench API")
    role.role_groups.add(group)
    user = User.objects.filter(owner=owner, username=f"bench-api-{owner.pk}").first()
    if user is None:
        user = User.objects.create_user(
            f"bench-api-{owner.pk}",
            f"bench-api-{owner.pk}@example.test",
            owner=owner,
            kind="api",
            allow_login=False,
            allow_api_read=True,
            role=role,
        )
    _, text = tokens.create_token(
        user,
        actor=user,
        name="Benchmark",
        expires_at=timezone.now() + datetime.timedelta(days=1),
        reason="",
    )
    return text


def api_targets(owner, sample) -> list[dict]:
    """Return the API load runs: POST /authz/check (a user of `owner` asked about Users read) and
    GET /me, each with a bearer token of the owner's benchmark API user."""
    text = bench_token(owner)
    bearer = {"Authorization": f"Bearer {text}"}
    question = {"user": sample.username, "area": "users", "level": "read"}

    def check(label: str, payload: dict) -> dict:
        body = json.dumps(payload)
        return {
            "label": label,
            "path": "/api/v1/authz/check",
            "script": LUA.format(method="POST", token=text, body=f"wrk.body = '{body}'"),
            "headers": {**bearer, "Content-Type": "application/json"},
            "method": "POST",
            "body": body,
        }

    def post(label: str, path: str, payload: dict) -> dict:
        body = json.dumps(payload, separators=(",", ":"))
        return {
            "label": label,
            "path": path,
            "script": LUA.format(method="POST", token=text, body=f"wrk.body = '{body}'"),
            "headers": {**bearer, "Content-Type": "application/json"},
            "method": "POST",
            "body": body,
        }

    subject = {"type": "user", "id": sample.username}
    areas = [a.code for a in catalog.areas_for(catalog.Channel.APPLICATION)][:BATCH]
    one = {
        "subject": subject,
        "resource": {"type": "area", "id": "users"},
        "action": {"name": "read"},
    }
    batch = {
        "subject": subject,
        "action": {"name": "read"},
        "evaluations": [{"resource": {"type": "area", "id": code}} for code in areas],
    }
    return [
        post(AUTHZEN_ONE, "/access/v1/evaluation", one),
        post(AUTHZEN_BATCH, "/access/v1/evaluations", batch),
        check("API POST /authz/check", question),
        check("API POST /authz/check, no explanation", {**question, "explain": False}),
        {
            "label": "API GET /me",
            "path": "/api/v1/me",
            "script": LUA.format(method="GET", token=text, body=""),
            "headers": bearer,
        },
    ]
