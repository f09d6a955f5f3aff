"""The portal's Prometheus metrics (prometheus-client) and how they are fed and read.

- Request latency per view name (a histogram), and requests by view and status class, recorded
  by `ops.middleware.OpsMiddleware`.
- Sign-ins by method, failed sign-ins by reason and lockouts, counted from the audit events as
  they commit (`audit.services.on_record`): the audit log stays the one place sign-ins are
  recorded, and audit imports nothing of this.
- Permission cache lookups by outcome (this process's memory, the shared cache, a miss that
  read the database), told by `roles.permissions` through its lookup observers.
- Outbox depth, the age of the oldest due task and given-up emails, read from the database when
  the metrics are scraped (`OutboxCollector`), so every worker and process counts alike.

Under gunicorn, PROMETHEUS_MULTIPROC_DIR (set by gunicorn.conf.py) makes every worker write its
counters to files there, and a scrape that reaches any worker reads the sum of all.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any

from django.apps import apps
from django.db import transaction
from django.db.models import Case, Count, F, Min, When
from django.utils import timezone
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)

# prometheus-client writes each process's values to this folder from the first metric on; a
# process started outside gunicorn (a command, the outbox worker) must not fail for its absence.
if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.makedirs(os.environ["PROMETHEUS_MULTIPROC_DIR"], exist_ok=True)

CONTENT_TYPE = CONTENT_TYPE_LATEST
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUEST_SECONDS = Histogram(
    "billing_access_request_duration_seconds",
    "Time from the first middleware to the response, by view name.",
    ["view"],
    buckets=LATENCY_BUCKETS,
)
REQUESTS = Counter(
    "billing_access_requests",
    "Requests answered, by view name and status class.",
    ["view", "status"],
)
SIGN_INS = Counter("billing_access_sign_ins", "Successful sign-ins, by method.", ["method"])
SIGN_IN_FAILURES = Counter(
    "billing_access_sign_in_failures", "Refused sign-ins, by exact reason.", ["reason", "method"]
)
LOCKOUTS = Counter("billing_access_lockouts", "Accounts locked out after failed sign-ins.")
PERMISSION_LOOKUPS = Counter(
    "billing_access_permission_cache_lookups",
    "Permission lookups by outcome: local (this process), shared (CACHE_URL), miss (database).",
    ["outcome"],
)
_LOOKUP_COUNTERS = {
    outcome: PERMISSION_LOOKUPS.labels(outcome) for outcome in ("local", "shared", "miss")
}
UNRESOLVED = "unresolved"  # a 404 that matched no URL: one label for every path


# The labelled children by view name (a bounded set: URL names), so that a request costs two
# dictionary reads and two writes, not prometheus-client's label lookups under its lock.
_by_view: dict[str, tuple[Any, dict[int, Any]]] = {}


def observe_request(view: str, status: int, seconds: float) -> None:
    children = _by_view.get(view)
    if children is None:
        children = _by_view.setdefault(view, (REQUEST_SECONDS.labels(view), {}))
    histogram, by_class = children
    histogram.observe(seconds)
    status_class = status // 100
    counter = by_class.get(status_class)
    if counter is None:
        counter = by_class.setdefault(status_class, REQUESTS.labels(view, f"{status_class}xx"))
    counter.inc()


def observe_permission_lookup(outcome: str) -> None:
    _LOOKUP_COUNTERS[outcome].inc()


def _count_sign_in_event(event) -> None:
    """Count sign-in events once their transaction commits (a rolled-back one never happened)."""
    if event.action == "sign_in":
        counter = SIGN_INS.labels(event.method or "password")
    elif event.action == "sign_in_failed":
        reason = (event.context or {}).get("reason") or "unknown"
        counter = SIGN_IN_FAILURES.labels(str(reason)[:40], event.method or "password")
    elif event.action == "locked_out":
        counter = LOCKOUTS
    else:
        return
    transaction.on_commit(partial(counter.inc))


def listen() -> None:
    """Register the feeds: audit events as they are written, permission cache lookups."""
    from audit import services as audit_services
    from roles import permissions

    audit_services.on_record(_count_sign_in_event)
    permissions.observe_lookups(observe_permission_lookup)


class OutboxCollector:
    """Read the outbox's depth from the database at scrape time (one query per table)."""

    def collect(self):
        if not apps.is_installed("delivery"):
            return
        try:
            yield from self._outbox()
        except Exception:  # a scrape while the database is away shows no outbox
            log.warning("Outbox metrics skipped: the database did not answer.", exc_info=True)

    def _outbox(self):
        from django_tasks_db.models import DBTaskResult

        from delivery.models import OutboundEmail

        tasks = GaugeMetricFamily(
            "billing_access_outbox_tasks",
            "Outbox tasks waiting (ready) or being run (running).",
            labels=["status"],
        )
        counts = dict(
            DBTaskResult.objects.filter(status__in=["READY", "RUNNING"])
            .values_list("status")
            .annotate(n=Count("pk"))
        )
        for status in ("READY", "RUNNING"):
            tasks.add_metric([status.lower()], counts.get(status, 0))
        yield tasks
        yield GaugeMetricFamily(
            "billing_access_outbox_oldest_due_seconds",
            "How long the oldest due task has waited for a worker (0 when none waits).",
            value=oldest_due_seconds(),
        )
        emails = GaugeMetricFamily(
            "billing_access_outbox_emails",
            "Emails queued (waiting or retrying) and given up after their last attempt.",
            labels=["state"],
        )
        by_state = dict(
            OutboundEmail.objects.filter(state__in=["queued", "failed"])
            .values_list("state")
            .annotate(n=Count("pk"))
        )
        retrying = OutboundEmail.objects.filter(state="queued", attempts__gt=0).count()
        emails.add_metric(["queued"], by_state.get("queued", 0))
        emails.add_metric(["retrying"], retrying)
        emails.add_metric(["failed"], by_state.get("failed", 0))
        yield emails
        if apps.is_installed("webhooks"):
            # By name: only the project's settings and urls import webhooks (pyproject).
            deliveries = apps.get_model("webhooks", "WebhookDelivery").objects
            webhooks = GaugeMetricFamily(
                "billing_access_outbox_webhook_deliveries",
                "Webhook deliveries pending (waiting or retrying) and given up.",
                labels=["state"],
            )
            by_state = dict(
                deliveries.filter(state__in=["pending", "failed"])
                .values_list("state")
                .annotate(n=Count("pk"))
            )
            webhooks.add_metric(["pending"], by_state.get("pending", 0))
            webhooks.add_metric(
                ["retrying"], deliveries.filter(state="pending", attempts__gt=0).count()
            )
            webhooks.add_metric(["failed"], by_state.get("failed", 0))
            yield webhooks


def oldest_due_seconds() -> float:
    """Seconds the oldest ready outbox task has been due (0 when nothing waits)."""
    from django_tasks_db.models import DBTaskResult, get_date_max

    due = DBTaskResult.objects.ready().aggregate(
        oldest=Min(Case(When(run_after=get_date_max(), then=F("enqueued_at")), default="run_after"))
    )["oldest"]
    return max(0.0, (timezone.now() - due).total_seconds()) if due else 0.0


def exposition() -> bytes:
    """The text every scrape gets: this process's (or all workers') metrics and the outbox."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        text = generate_latest(registry)
    else:
        text = generate_latest(REGISTRY)
    outbox = CollectorRegistry(auto_describe=False)
    outbox.register(OutboxCollector())
    return text + generate_latest(outbox)
