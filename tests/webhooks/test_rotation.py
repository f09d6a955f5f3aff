"""Rotating an endpoint's signing secret: during the overlap every delivery carries a signature
by the new and by the previous secret, so a real receiver holding either one verifies it; after
the overlap (or "finish rotation") only the new secret signs. Audited with its reason."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from audit.models import AuditEvent
from delivery.sweeps import housekeep
from delivery.worker import run_due
from roles import catalog
from tests.access_helpers import assert_screen_access
from tests.builders import make_user
from webhooks import events, services, signing
from webhooks.models import WebhookEndpoint

pytestmark = pytest.mark.django_db


def send_test(endpoint, integrator, receiver, *, at=None):
    """Queue a test event, deliver it (at `at`), return what the receiver got."""
    receiver.received.clear()
    events.send_test_event(endpoint, actor=integrator)
    if at is None:
        run_due()
    else:
        with mock.patch("django.utils.timezone.now", return_value=at):
            run_due()
    (got,) = receiver.received
    return got


def test_during_the_overlap_either_secret_verifies(endpoint, integrator, receiver):
    old = receiver.secret
    rotated, new = services.rotate_secret(
        endpoint, actor=integrator, reason="Yearly rotation", overlap_hours=24
    )
    assert new != old and new.startswith("whsec_")
    receiver.secret = [new, old]
    got = send_test(endpoint, integrator, receiver)
    header = got["headers"]["webhook-signature"]
    first, second = header.split(" ")
    assert first.startswith("v1,") and second.startswith("v1,")
    assert got["verified_by"] == [0, 1]  # the new secret's signature and the old one's
    # A receiver still holding only the old secret, and one already on the new, both accept.
    for held in (old, new):
        receiver.secret = held
        assert send_test(endpoint, integrator, receiver)["verified"]


def test_after_the_overlap_only_the_new_secret_signs(endpoint, integrator, receiver):
    old = receiver.secret
    _, new = services.rotate_secret(endpoint, actor=integrator, reason="Leak", overlap_hours=2)
    receiver.secret = [new, old]
    later = timezone.now() + datetime.timedelta(hours=2, seconds=1)
    got = send_test(endpoint, integrator, receiver, at=later)
    assert got["verified_by"] == [0]
    assert len(got["headers"]["webhook-signature"].split(" ")) == 1
    # The housekeeping forgets the previous secret once its overlap is over.
    assert WebhookEndpoint.objects.get(pk=endpoint.pk).previous_secret_encrypted
    with mock.patch("django.utils.timezone.now", return_value=later):
        housekeep(later)
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert stored.previous_secret_encrypted == "" and stored.previous_secret_until is None


def test_finish_rotation_drops_the_previous_secret_at_once(endpoint, integrator, receiver):
    old = receiver.secret
    _, new = services.rotate_secret(endpoint, actor=integrator, reason="Leak", overlap_hours=48)
    services.finish_rotation(endpoint, actor=integrator, reason="Receiver switched")
    receiver.secret = old
    assert not send_test(endpoint, integrator, receiver)["verified"]
    receiver.secret = new
    assert send_test(endpoint, integrator, receiver)["verified"]
    with pytest.raises(ValidationError, match="No rotation is running"):
        services.finish_rotation(endpoint, actor=integrator, reason="Again")
    reasons = list(
        AuditEvent.objects.filter(
            target_id=str(endpoint.pk), details__startswith="Webhook secret"
        ).values_list("reason", flat=True)
    ) + list(
        AuditEvent.objects.filter(
            target_id=str(endpoint.pk), details="Webhook signing secret rotated"
        ).values_list("reason", flat=True)
    )
    assert sorted(reasons) == ["Leak", "Receiver switched"]


def test_rotating_twice_keeps_only_the_latest_two(endpoint, integrator, receiver):
    first = receiver.secret
    _, second = services.rotate_secret(endpoint, actor=integrator, reason="One", overlap_hours=24)
    _, third = services.rotate_secret(endpoint, actor=integrator, reason="Two", overlap_hours=24)
    receiver.secret = [third, second, first]
    assert send_test(endpoint, integrator, receiver)["verified_by"] == [0, 1]


def test_a_rotation_needs_a_reason_and_a_sane_overlap(endpoint, integrator):
    with pytest.raises(ValidationError, match="Say why"):
        services.rotate_secret(endpoint, actor=integrator, reason=" ", overlap_hours=24)
    with pytest.raises(ValidationError, match="between 1 and 168"):
        services.rotate_secret(endpoint, actor=integrator, reason="x", overlap_hours=0)
    assert not AuditEvent.objects.filter(details="Webhook signing secret rotated").exists()


def test_the_rotation_screens(signed_in, owner, integrator, endpoint, receiver):
    reader = make_user(owner, grants={catalog.PARAMETERS: catalog.READ}, privilege_level=5)
    assert_screen_access(
        signed_in,
        [f"/settings/webhooks/{endpoint.pk}/rotate/"],
        allowed=integrator,
        denied=reader,
    )
    client = signed_in(integrator)
    refused = client.post(f"/settings/webhooks/{endpoint.pk}/rotate/", {"overlap_hours": "24"})
    assert refused.status_code == 400 and "This field is required" in refused.content.decode()
    page = client.post(
        f"/settings/webhooks/{endpoint.pk}/rotate/", {"overlap_hours": "12", "reason": "Yearly"}
    )
    assert page.status_code == 200 and page["Cache-Control"] == "no-store"
    stored = WebhookEndpoint.objects.get(pk=endpoint.pk)
    assert stored.secret in page.content.decode()  # shown once
    detail = client.get(f"/settings/webhooks/{endpoint.pk}/").content.decode()
    assert stored.secret not in detail and "Rotating" in detail and "Finish rotation" in detail
    url = f"/settings/webhooks/{endpoint.pk}/finish-rotation/"
    assert client.post(url, {}).status_code == 400  # a reason is needed
    assert client.post(url, {"reason": "Switched"}).status_code == 302
    assert not WebhookEndpoint.objects.get(pk=endpoint.pk).rotating()
    event = AuditEvent.objects.get(details="Webhook secret rotation finished")
    assert event.reason == "Switched" and event.actor_id == integrator.pk
    assert signing.SECRET_PREFIX not in str(event.changes)
