"""Liveness, readiness, metrics and the database-outage answer, in-process."""

from __future__ import annotations

import logging

import pytest
from django.db import OperationalError
from django.test import Client
from prometheus_client import REGISTRY

from billing_access import env
from ops import cache as ops_cache
from ops import metrics
from roles import permissions
from tests.builders import PASSWORD, make_user

TOKEN = "test-metrics-token-" + "m" * 24


def sample(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return {"HTTP_AUTHORIZATION": f"Bearer {TOKEN}"}


def test_healthz_touches_nothing(client):
    # No django_db mark: any query would fail the test.
    response = client.get("/healthz", HTTP_HOST="10.1.2.3:8000")  # a probe by its address
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_says_one_word_to_anonymous_callers(client, metrics_token):
    response = client.get("/readyz", HTTP_HOST="10.1.2.3:8000")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    wrong = client.get("/readyz", HTTP_AUTHORIZATION="Bearer " + "x" * len(TOKEN))
    assert wrong.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_details_with_the_token(client, metrics_token, django_assert_max_num_queries):
    with django_assert_max_num_queries(2):  # SELECT 1, the oldest due task
        body = client.get("/readyz", **metrics_token).json()
    assert body["status"] == "ok"
    assert set(body["checks"]) == {"database", "cache", "worker"}
    assert all(check["ok"] for check in body["checks"].values())


@pytest.mark.django_db
def test_readyz_unavailable_without_the_database(client, metrics_token, monkeypatch):
    from ops import readiness

    def database_away():
        raise OperationalError("connection refused")

    monkeypatch.setitem(
        readiness._checks, "database", readiness.Check("database", database_away, True)
    )
    response = client.get("/readyz", **metrics_token)
    assert response.status_code == 503
    assert response["Retry-After"]
    body = response.json()
    assert body["status"] == "unavailable"
    assert "connection refused" in body["checks"]["database"]["problem"]
    assert body["checks"]["worker"]["problem"].startswith("not checked")
    assert client.get("/readyz").json() == {"status": "unavailable"}


@pytest.mark.django_db
def test_readyz_degraded_when_the_outbox_waits_on_no_worker(client, metrics_token, monkeypatch):
    monkeypatch.setattr(metrics, "oldest_due_seconds", lambda: 3600.0)
    response = client.get("/readyz", **metrics_token)
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "degraded"
    assert "3600 s" in body["checks"]["worker"]["problem"]


@pytest.mark.django_db
def test_metrics_refused_without_token_or_network(client, metrics_token):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer nope").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 403  # no scheme


@pytest.mark.django_db
def test_metrics_from_an_allowed_network(client, settings):
    settings.METRICS_TOKEN = ""
    settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8"]
    assert client.get("/metrics", REMOTE_ADDR="192.0.2.7").status_code == 403
    response = client.get("/metrics", REMOTE_ADDR="10.20.30.40")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")


@pytest.mark.django_db
def test_metrics_count_views_sign_ins_and_permission_lookups(
    client, owner, metrics_token, django_capture_on_commit_callbacks
):
    user = make_user(owner, username="metered")
    failed = sample(
        "billing_access_sign_in_failures_total", reason="wrong_password", method="password"
    )
    signed_in = sample("billing_access_sign_ins_total", method="password")
    misses = sample("billing_access_permission_cache_lookups_total", outcome="miss")
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/sign-in/", {"login": "metered", "password": "not it"})
        client.post("/sign-in/", {"login": "metered", "password": PASSWORD})
    assert (
        sample("billing_access_sign_in_failures_total", reason="wrong_password", method="password")
        == failed + 1
    )
    assert sample("billing_access_sign_ins_total", method="password") == signed_in + 1
    client.get("/")
    assert sample("billing_access_permission_cache_lookups_total", outcome="miss") >= misses + 1
    assert user.pk
    text = client.get("/metrics", **metrics_token).content.decode()
    assert 'billing_access_request_duration_seconds_bucket{le="0.005",view="home"}' in text
    assert 'billing_access_requests_total{status="2xx",view="home"}' in text
    assert 'billing_access_outbox_tasks{status="ready"}' in text
    assert "billing_access_outbox_oldest_due_seconds" in text
    assert 'billing_access_outbox_emails{state="failed"}' in text
    assert 'billing_access_outbox_webhook_deliveries{state="pending"}' in text


def test_permission_lookup_observers_are_told_each_outcome(monkeypatch):
    seen = []
    monkeypatch.setattr(permissions, "_lookup_observers", [seen.append])

    class Anonymous:
        is_authenticated = False

    permissions.for_user(Anonymous())
    assert seen == []  # nobody to look up


@pytest.mark.django_db
def test_a_database_error_gets_the_503_page_in_each_format(owner, monkeypatch):
    client = Client(raise_request_exception=False)
    client.force_login(
        make_user(owner, username="unlucky"), backend="accounts.backends.PortalBackend"
    )

    def database_away(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(permissions, "for_user", database_away)
    page = client.get("/")
    assert page.status_code == 503
    assert page["Retry-After"] == "5"
    html = page.content.decode()
    assert "Briefly unavailable" in html
    assert "Traceback" not in html and "OperationalError" not in html

    from django.test import RequestFactory

    from billing_access.views import server_error

    factory = RequestFactory()
    for path, content_type in (
        ("/api/v1/me", "application/json"),
        ("/access/v1/evaluation", "application/json"),
        ("/scim/v2/Users", "application/scim+json"),
    ):
        try:
            raise OperationalError("the database went away")
        except OperationalError:
            response = server_error(factory.get(path))
        assert response.status_code == 503, path
        assert response["Content-Type"] == content_type
        assert b"went away" not in response.content
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(factory.get("/")).status_code == 500


def test_cache_url_gives_the_fallback_cache_with_timeouts():
    config = env.cache_config("redis://127.0.0.1:6379/3")
    assert config["BACKEND"] == "ops.cache.FallbackRedisCache"
    assert config["OPTIONS"]["socket_connect_timeout"] <= 1


def test_redis_away_falls_back_to_memory_with_one_warning(caplog):
    # Django gives each thread its own cache object: the outage is the process's, told once.
    location = "redis://127.0.0.1:9/7"  # the discard port: nothing listens
    options = {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}
    per_thread = [ops_cache.FallbackRedisCache(location, options) for _ in range(3)]
    with caplog.at_level(logging.WARNING, logger="ops.cache"):
        for n in range(60):
            cache = per_thread[n % 3]
            cache.set(f"key{n}", n, 60)
            assert per_thread[(n + 1) % 3].get(f"key{n}") == n
        assert cache.add("added", 1) is True
        assert cache.incr("added") == 2
    assert all(cache.is_down for cache in per_thread)
    warnings = [r for r in caplog.records if r.name == "ops.cache"]
    assert len(warnings) == 1
    assert "unreachable" in warnings[0].getMessage()
