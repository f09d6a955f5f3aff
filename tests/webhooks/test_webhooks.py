"""Change events for subscribers: produced from the audit log in the change's transaction,
posted signed (Standard Webhooks) to a real receiver, retried, disabled, never to private
addresses unless allowed, and shown on the endpoint's screen."""

from __future__ import annotations

import datetime
from unittest import mock

import pytest
from django.core import mail
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from accounts import users
from accounts.choices import AccessSource
from delivery.worker import run_due
from roles import catalog
from roles import services as role_services
from tests.access_helpers import assert_screen_access
from tests.builders import make_user
from webhooks import deliveries, events, services, signing, transport
from webhooks.choices import DeliveryState, EventType
from webhooks.models import WebhookDelivery, WebhookEndpoint, WebhookMessage

ALL_TYPES = list(EventType.values)


def later(**delta):
    return mock.patch(
        "django.utils.timezone.now",
        return_value=timezone.now() + datetime.timedelta(**delta),
    )


# Produced from the audit log, in the change's transaction ------------------------------------


@pytest.mark.django_db
def test_deactivation_reaches_the_receiver_signed_with_the_new_permissions_version(
    endpoint, receiver, integrator, owner
):
    bob = make_user(owner, username="bob", privilege_level=2)
    users.deactivate_user(bob, actor=integrator, reason="Left", source=AccessSource.SCREEN)
    bob.refresh_from_db()
    assert receiver.received == []  # nothing leaves inside the request
    run_due()
    assert sorted(receiver.types()) == ["permissions.changed", "user.deactivated"]
    assert all(r["verified"] for r in receiver.received)
    (changed,) = receiver.of_type("permissions.changed")
    data = changed["json"]["data"]
    assert data["user"] == {"id": bob.pk, "permissions_version": bob.permissions_version}
    assert data["audit_event"]["action"] == "user_deactivated"
    (deactivated,) = receiver.of_type("user.deactivated")
    headers = deactivated["headers"]
    assert headers["webhook-id"].startswith("msg_")
    assert headers["webhook-signature"].startswith("v1,")
    assert deactivated["json"]["data"]["changes"] == {"allow_login": [True, False]}
    # Tampering is detected by the same check the README shows.
    forged = deactivated["body"].replace(b"false", b"true ")
    assert not signing.verify(
        receiver.secret, headers, forged, now=int(headers["webhook-timestamp"])
    )
    assert WebhookDelivery.objects.filter(state=DeliveryState.DELIVERED).count() == len(
        receiver.received
    )


@pytest.mark.django_db
def test_no_event_without_its_change(endpoint, integrator, owner):
    bob = make_user(owner, username="bob", privilege_level=2)
    before = WebhookMessage.objects.count()

    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        users.deactivate_user(bob, actor=integrator, reason="Left", source=AccessSource.SCREEN)
        assert WebhookMessage.objects.count() > before  # written in the change's transaction
        raise Undo
    assert WebhookMessage.objects.count() == before


@pytest.mark.django_db
def test_only_the_types_an_endpoint_chose(receiver, integrator, owner):
    made, receiver.secret = services.create_endpoint(
        reason="Receives our change events",
        actor=integrator,
        name="Roles only",
        url=receiver.url,
        event_types=["role.changed"],
    )
    role = role_services.create_role(actor=integrator, name="Clerk", reason="New team")
    bob = make_user(owner, username="bob", privilege_level=2)
    users.deactivate_user(bob, actor=integrator, reason="Left", source=AccessSource.SCREEN)
    run_due()
    assert receiver.types() == ["role.changed"]
    data = receiver.received[0]["json"]["data"]
    assert data["target"]["id"] == str(role.pk)
    assert "authz_epoch" in data["owner"]


@pytest.mark.django_db
def test_override_and_role_changes_map_to_their_types(endpoint, receiver, integrator, owner):
    bob = make_user(owner, username="bob", privilege_level=2)
    role_services.set_override(bob, "invoices", "read", actor=integrator, reason="Quarter end")
    run_due()
    assert "permissions.changed" in receiver.types()
    assert events.types_of(mock.Mock(action="user_changed", changes={"email": [1, 2]})) == [
        "user.changed",
        "audit.recorded",
    ]
    assert "permissions.changed" in events.types_of(
        mock.Mock(action="user_changed", changes={"role": [None, "Clerk"]})
    )


@pytest.mark.django_db
def test_audit_recorded_carries_the_chain_link(receiver, integrator, owner):
    from audit.hashing import canonical_json, content_hash
    from audit.models import AuditEvent

    _, receiver.secret = services.create_endpoint(
        reason="Receives our change events",
        actor=integrator,
        name="Evidence",
        url=receiver.url,
        event_types=["audit.recorded"],
    )
    bob = make_user(owner, username="bob", privilege_level=2)
    users.deactivate_user(bob, actor=integrator, reason="Left", source=AccessSource.SCREEN)
    run_due()
    (record,) = [
        r
        for r in receiver.of_type("audit.recorded")
        if r["json"]["data"]["audit_event"]["action"] == "user_deactivated"
    ]
    evidence = record["json"]["data"]["evidence"]
    stored = AuditEvent.objects.get(pk=record["json"]["data"]["audit_event"]["id"])
    assert evidence["hash"] == stored.hash == content_hash(stored)
    content = {k: v for k, v in evidence.items() if k != "hash"}
    import hashlib

    assert hashlib.sha256(canonical_json(content).encode()).hexdigest() == stored.hash


# Retries, 410, refusals, 3 days of failure ---------------------------------------------------


@pytest.mark.django_db
def test_5xx_is_retried_with_backoff_and_the_same_id(endpoint, receiver, integrator):
    receiver.status = [503, 500, 200]
    events.send_test_event(endpoint, actor=integrator)
    run_due()
    (delivery,) = WebhookDelivery.objects.all()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("pending", 1, 503)
    with later(seconds=6):
        run_due()
    with later(minutes=6):
        run_due()
    delivery.refresh_from_db()
    assert (delivery.state, delivery.attempts, delivery.last_status_code) == ("delivered", 3, 200)
    assert len({r["id"] for r in receiver.received}) == 1
    assert len(receiver.received) == 3
    assert all(r["verified"] for r in receiver.received)


@pytest.mark.django_db
def test_retries_stop_after_24_hours(endpoint, receiver, integrator):
    receiver.status = 502
    events.send_test_event(endpoint, actor=integrator)
    run_due()
    for hours in (1, 3, 6, 12, 20, 23):
        with later(hours=hours):
            run_due()
    with later(hours=25):
        run_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.FAILED


@pytest.mark.django_db
def test_410_disables_the_endpoint_and_tells_the_administrators(endpoint, receiver, integrator):
    receiver.status = 410
    events.send_test_event(endpoint, actor=integrator)
    run_due()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "410" in endpoint.disabled_reason
    assert WebhookDelivery.objects.get().state == DeliveryState.FAILED
    run_due()  # the notice goes through the outbox
    assert [m.to for m in mail.outbox] == [[integrator.email]]
    assert "was disabled" in mail.outbox[0].subject


@pytest.mark.django_db
def test_other_4xx_is_not_retried(endpoint, receiver, integrator):
    receiver.status = 400
    events.send_test_event(endpoint, actor=integrator)
    run_due()
    delivery = WebhookDelivery.objects.get()
    assert (delivery.state, delivery.last_status_code) == ("failed", 400)
    endpoint.refresh_from_db()
    assert endpoint.enabled and endpoint.failing_since is not None


@pytest.mark.django_db
def test_an_endpoint_failing_for_three_days_is_disabled(endpoint, receiver, integrator):
    receiver.status = 500
    events.send_test_event(endpoint, actor=integrator)
    run_due()
    endpoint.refresh_from_db()
    assert endpoint.failing_since is not None
    with later(days=3, minutes=1):
        events.send_test_event(endpoint, actor=integrator)
        run_due()
    endpoint.refresh_from_db()
    assert not endpoint.enabled and "3 days" in endpoint.disabled_reason
    run_due()
    assert any("was disabled" in m.subject for m in mail.outbox)


@pytest.mark.django_db
def test_a_hanging_receiver_times_out_and_is_retried(endpoint, receiver, integrator, settings):
    settings.WEBHOOK_READ_TIMEOUT = 0.3
    receiver.hang = 2
    events.send_test_event(endpoint, actor=integrator)
    run_due()
    delivery = WebhookDelivery.objects.get()
    assert delivery.state == DeliveryState.PENDING
    assert delivery.last_status_code is None and "in time" in delivery.last_error


# SSRF ------------------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/hook",
        "http://localhost/hook",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.5/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://0.0.0.0/hook",
        "ftp://example.com/hook",
        "http://user:pass@example.com/hook",
    ],
)
def test_private_loopback_and_link_local_addresses_are_refused(integrator, settings, url):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with pytest.raises(ValidationError):
        services.create_endpoint(
            reason="Receives our change events",
            actor=integrator,
            name="x",
            url=url,
            event_types=ALL_TYPES,
        )
    assert not WebhookEndpoint.objects.exists()


def test_delivery_checks_the_address_again(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    with mock.patch(
        "socket.getaddrinfo", return_value=[(2, 1, 6, "", ("127.0.0.1", 80))]
    ):  # a name that now resolves to loopback (DNS rebinding)
        answer = transport.post("http://hooks.example.com/x", b"{}", {})
    assert answer.status is None and "loopback" in answer.error
    assert transport.is_public("93.184.216.34")
    assert not transport.is_public("::ffff:10.0.0.1")


# Screens ---------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_screens_need_parameters(signed_in, owner, integrator, endpoint):
    reader = make_user(owner, grants={catalog.PARAMETERS: catalog.READ}, privilege_level=5)
    nobody = make_user(owner, privilege_level=5)
    assert_screen_access(
        signed_in,
        ["/settings/webhooks/", f"/settings/webhooks/{endpoint.pk}/"],
        allowed=reader,
        denied=nobody,
    )
    assert_screen_access(
        signed_in,
        ["/settings/webhooks/new/", f"/settings/webhooks/{endpoint.pk}/edit/"],
        allowed=integrator,
        denied=reader,
    )


@pytest.mark.django_db
def test_create_shows_the_secret_once_and_keeps_it_encrypted(signed_in, integrator, receiver):
    client = signed_in(integrator)
    page = client.post(
        "/settings/webhooks/new/",
        {
            "name": "Core",
            "url": receiver.url,
            "event_types": ["user.created"],
            "enabled": "on",
            "reason": "CRM sync",
        },
    )
    assert page.status_code == 201
    made = WebhookEndpoint.objects.get()
    assert made.secret.startswith("whsec_") and made.secret in page.content.decode()
    assert made.secret not in made.secret_encrypted
    assert made.secret not in client.get(f"/settings/webhooks/{made.pk}/").content.decode()
    from audit.models import AuditEvent

    assert (
        AuditEvent.objects.get(action="settings_item_created", target_id=str(made.pk)).reason
        == "CRM sync"
    )


@pytest.mark.django_db
def test_refused_url_is_shown_on_the_form(signed_in, integrator, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    page = signed_in(integrator).post(
        "/settings/webhooks/new/",
        {
            "name": "Core",
            "url": "http://127.0.0.1/x",
            "event_types": ["user.created"],
            "reason": "CRM sync",
        },
    )
    assert page.status_code == 400
    assert "private, loopback or link-local" in page.content.decode()


@pytest.mark.django_db
def test_test_event_and_send_again_from_the_screen(signed_in, integrator, endpoint, receiver):
    client = signed_in(integrator)
    assert client.post(f"/settings/webhooks/{endpoint.pk}/test/").status_code == 302
    run_due()
    assert receiver.types() == ["webhook.test"]
    page = client.get(f"/settings/webhooks/{endpoint.pk}/").content.decode()
    assert "Delivered" in page and "200" in page and "Send again" in page
    delivery = WebhookDelivery.objects.get()
    url = f"/settings/webhooks/{endpoint.pk}/deliveries/{delivery.pk}/resend/"
    assert client.post(url).status_code == 302
    run_due()
    assert [r["id"] for r in receiver.received] == [delivery.message.msg_id] * 2
    assert receiver.received[0]["body"] == receiver.received[1]["body"]


@pytest.mark.django_db
def test_edit_and_delete_need_a_reason_and_are_audited_with_it(signed_in, integrator, endpoint):
    client = signed_in(integrator)
    edit = f"/settings/webhooks/{endpoint.pk}/edit/"
    change = {"name": "Renamed", "url": endpoint.url, "event_types": ["user.created"]}
    refused = client.post(edit, change)
    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    endpoint.refresh_from_db()
    assert endpoint.name != "Renamed"
    assert client.post(edit, {**change, "reason": "Paused for the migration"}).status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.name == "Renamed" and not endpoint.enabled
    delete = f"/settings/webhooks/{endpoint.pk}/delete/"
    assert client.post(delete).status_code == 400
    assert WebhookEndpoint.objects.exists()
    assert client.post(delete, {"reason": "Receiver retired"}).status_code == 302
    assert not WebhookEndpoint.objects.exists()
    from audit.models import AuditEvent

    reasons = dict(AuditEvent.objects.values_list("action", "reason"))
    assert reasons["settings_item_changed"] == "Paused for the migration"
    assert reasons["settings_item_retired"] == "Receiver retired"


@pytest.mark.django_db
def test_the_services_refuse_a_blank_reason(integrator, endpoint, receiver):
    with pytest.raises(ValidationError, match="Say why"):
        services.create_endpoint(
            actor=integrator, reason=" ", name="x", url=receiver.url, event_types=ALL_TYPES
        )
    with pytest.raises(ValidationError, match="Say why"):
        services.delete_endpoint(endpoint, actor=integrator, reason="")
    assert WebhookEndpoint.objects.filter(pk=endpoint.pk).exists()


@pytest.mark.django_db
def test_another_owners_endpoint_is_not_found(signed_in, endpoint):
    from tests.builders import make_owner

    stranger = make_user(make_owner(), grants={catalog.PARAMETERS: catalog.FULL}, privilege_level=9)
    client = signed_in(stranger)
    assert client.get(f"/settings/webhooks/{endpoint.pk}/").status_code == 404
    assert client.post(f"/settings/webhooks/{endpoint.pk}/test/").status_code == 404


@pytest.mark.django_db
def test_purge_keeps_messages_still_being_delivered(endpoint, receiver, integrator):
    events.send_test_event(endpoint, actor=integrator)
    run_due()  # delivered
    receiver.status = 503
    events.send_test_event(endpoint, actor=integrator)
    run_due()  # pending, retrying
    with later(days=91):
        assert deliveries.purge_finished(timezone.now()) == 1
    (left,) = WebhookMessage.objects.all()
    assert left.deliveries.get().state == DeliveryState.PENDING
