"""Delivering webhooks (run by the worker): sign, post, and decide what the answer means.

- 2xx: delivered; the endpoint is healthy again.
- 410 Gone: the receiver asks to stop: the endpoint is disabled and its owner's administrators
  are told.
- 5xx, 408, 429, a timeout or no connection: tried again after 5 s, 5 min, 30 min, 2 h, 5 h,
  then every 10 h, until 24 hours after the message was queued.
- Any other 4xx: the receiver refused this message; not tried again.
An endpoint whose deliveries have failed without a success for 3 days is disabled and its
owner's administrators told.
"""

from __future__ import annotations

import datetime
import logging

from django.db import transaction
from django.tasks import task
from django.utils import timezone

from delivery import conf as delivery_conf

from . import listening, notices, signing, transport
from .choices import DeliveryState
from .models import WebhookDelivery, WebhookEndpoint

log = logging.getLogger(__name__)

BACKOFF = (5, 300, 1800, 7200, 18000, 36000)
RETRY_FOR = datetime.timedelta(hours=24)
DISABLE_AFTER = datetime.timedelta(days=3)
RETRIED_CODES = {408, 429}


def deliver(delivery_id: int, *, now: datetime.datetime | None = None) -> str:
    """Make one attempt at a pending delivery; return what happened."""
    with transaction.atomic():
        delivery = (
            WebhookDelivery.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("endpoint", "message")
            .filter(pk=delivery_id, state=DeliveryState.PENDING)
            .first()
        )
        if delivery is None:
            return "nothing to deliver"
        now = now or timezone.now()
        endpoint = delivery.endpoint
        if not endpoint.enabled:
            _fail(delivery, "Not sent: the endpoint is disabled.")
            return "endpoint disabled"
        answer = attempt(endpoint, delivery.message.msg_id, delivery.message.body, now=now)
        delivery.attempts += 1
        delivery.last_attempt_at = now
        delivery.last_status_code = answer.status
        delivery.last_error = answer.error[:300]
        status = answer.status
        if status is not None and 200 <= status < 300:
            delivery.state = DeliveryState.DELIVERED
            delivery.delivered_at = now
            delivery.last_error = ""
            delivery.save()
            if endpoint.failing_since is not None:
                WebhookEndpoint.objects.filter(pk=endpoint.pk).update(failing_since=None)
            return "delivered"
        if status == 410:
            _fail(delivery, "The receiver answered 410 Gone.")
            disable(endpoint, "The receiver answered 410 Gone: it asked for no more deliveries.")
            return "gone"
        _note_failure(endpoint, now)
        retried = status is None or status >= 500 or status in RETRIED_CODES
        if not retried:
            _fail(delivery, delivery.last_error or f"The receiver refused it ({status}).")
            return "refused"
        next_at = now + datetime.timedelta(
            seconds=delivery_conf.backoff(delivery.attempts, BACKOFF)
        )
        if next_at > delivery.created_at + RETRY_FOR:
            _fail(delivery, delivery.last_error or f"Still failing after 24 hours ({status}).")
            return "given up"
        delivery.next_attempt_at = next_at
        delivery.save()
        deliver_webhook.using(run_after=next_at).enqueue(delivery.pk)
        return "retrying"


def attempt(endpoint: WebhookEndpoint, msg_id: str, body: str, *, now) -> transport.Answer:
    """Sign and post one message to the endpoint."""
    raw = body.encode("utf-8")
    timestamp = int(now.timestamp())
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "BillingAccess-Webhooks/1",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.sign_all(
            endpoint.signing_secrets(now), msg_id, timestamp, raw
        ),
    }
    return transport.post(endpoint.url, raw, headers)


def _fail(delivery: WebhookDelivery, error: str) -> None:
    delivery.state = DeliveryState.FAILED
    delivery.last_error = error[:300]
    delivery.save()


def _note_failure(endpoint: WebhookEndpoint, now) -> None:
    """Start the endpoint's failing clock, or disable it when it has run for 3 days."""
    if endpoint.failing_since is None:
        WebhookEndpoint.objects.filter(pk=endpoint.pk, failing_since__isnull=True).update(
            failing_since=now
        )
    elif now - endpoint.failing_since >= DISABLE_AFTER:
        disable(endpoint, "Every delivery failed for 3 days.")


def disable(endpoint: WebhookEndpoint, reason: str) -> None:
    """Disable the endpoint (its pending deliveries stop) and email its owner's administrators."""
    with transaction.atomic():
        changed = WebhookEndpoint.objects.filter(pk=endpoint.pk, enabled=True).update(
            enabled=False, disabled_reason=reason[:300], updated_at=timezone.now()
        )
        if changed:
            listening.configuration_changed(endpoint.owner_id)
            log.warning("Webhook endpoint %s disabled: %s", endpoint.pk, reason)
            notices.endpoint_disabled(endpoint, reason)


def requeue_overdue(now: datetime.datetime) -> int:
    """Enqueue a task again for pending deliveries long past their attempt time (a lost task)."""
    cutoff = now - datetime.timedelta(seconds=delivery_conf.overdue_seconds())
    ids = list(
        WebhookDelivery.objects.filter(state=DeliveryState.PENDING, next_attempt_at__lt=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    with transaction.atomic():
        WebhookDelivery.objects.filter(pk__in=ids).update(next_attempt_at=now)
        for pk in ids:
            deliver_webhook.enqueue(pk)
    return len(ids)


def drop_previous_secrets(now: datetime.datetime) -> int:
    """Forget the previous secrets of rotations whose overlap has ended (they sign nothing
    already: `WebhookEndpoint.signing_secrets` reads the end of the overlap)."""
    WebhookEndpoint.objects.filter(previous_secret_until__lte=now).update(
        previous_secret_encrypted="", previous_secret_until=None
    )
    return 0  # nothing enqueued


def purge_finished(before: datetime.datetime) -> int:
    """Delete messages older than `before` none of whose deliveries is still pending."""
    from .models import WebhookMessage

    pending = WebhookDelivery.objects.filter(state=DeliveryState.PENDING).values("message_id")
    _, per_model = (
        WebhookMessage.objects.filter(created_at__lt=before).exclude(pk__in=pending).delete()
    )
    return per_model.get(WebhookMessage._meta.label, 0)


# The outbox worker runs this task (Django's tasks framework; the database backend keeps it).
@task()
def deliver_webhook(delivery_id: int) -> str:
    """Make one attempt at a webhook delivery (see `deliver`)."""
    return deliver(delivery_id)
