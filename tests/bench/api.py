"""The JSON API over HTTP for `make bench`: POST /authz/check and GET /me with a bearer token.

Runs against gunicorn (2 workers) with wrk like the screens; the per-token rate limit is turned
off for the run (API_RATE_LIMIT=0/minute) so that the figures measure the work, not the limiter.
"""

from __future__ import annotations

import datetime
import json
import os
import urllib.error
import urllib.request

from django.utils import timezone

from accounts import tokens
from accounts.models import User
from roles.models import Grant, Role, RoleGroup

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
    )
    return text


def warm_up(target: str, text: str, times: int = 8) -> None:
    """Let both workers load the application before the clock starts."""
    for _ in range(times):
        request = urllib.request.Request(target, headers={"Authorization": f"Bearer {text}"})
        try:
            urllib.request.urlopen(request, timeout=30).close()  # noqa: S310 - loopback
        except (urllib.error.URLError, OSError):
            pass


def api_http_runs(owner, sample, *, gunicorn, wrk, free_port) -> dict:
    """Measure GET /me and POST /authz/check (a user of `owner` asked about Users read)."""
    text = bench_token(owner)
    body = json.dumps({"user": sample.username, "area": "users", "level": "read"})
    scripts = {
        name: LUA.format(method=method, token=text, body=payload)
        for name, method, payload in (
            ("me", "GET", ""),
            ("authz", "POST", f"wrk.body = '{body}'"),
        )
    }
    previous = os.environ.get("API_RATE_LIMIT")
    os.environ["API_RATE_LIMIT"] = "0/minute"
    results = {}
    try:
        with gunicorn("tests.bench.settings", free_port()) as base:
            warm_up(f"{base}/api/v1/me", text)
            results["API POST /authz/check"] = wrk(
                f"{base}/api/v1/authz/check", "", script=scripts["authz"]
            )
            results["API GET /me"] = wrk(f"{base}/api/v1/me", "", script=scripts["me"])
    finally:
        if previous is None:
            os.environ.pop("API_RATE_LIMIT", None)
        else:
            os.environ["API_RATE_LIMIT"] = previous
    return results
