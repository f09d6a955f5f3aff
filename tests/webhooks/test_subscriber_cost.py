"""What an audit event costs its owner in subscriber lookups: nothing without webhook endpoints
or a SIEM stream (the chain head, locked anyway, says so), at most one query with both."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts import users
from accounts.choices import AccessSource
from audit.models import AuditChainHead
from delivery.worker import run_due
from roles import catalog
from siem import services as siem_services
from tests.builders import make_owner, make_user
from tests.siem.conftest import self_signed
from webhooks import deliveries, listening, services
from webhooks.models import WebhookDelivery

SUBSCRIBER_TABLES = ("webhooks_webhookendpoint", "siem_siemstream")


def admin_of(owner):
    return make_user(
        owner,
        grants={catalog.PARAMETERS: catalog.FULL, catalog.USERS: catalog.FULL},
        privilege_level=9,
    )


def rename(person, actor, name):
    """Change one plain field of `person` and return the queries it took."""
    with CaptureQueriesContext(connection) as captured:
        users.update_user(
            person,
            actor=actor,
            data={"first_name": name},
            reason="Typo",
            source=AccessSource.SCREEN,
        )
    return [q["sql"] for q in captured.captured_queries]


def lookups(queries):
    """The SELECTs that ask for a subscriber's configuration."""
    return [
        q
        for q in queries
        if q.lstrip().upper().startswith("SELECT") and any(t in q for t in SUBSCRIBER_TABLES)
    ]


def selects(queries):
    return [q for q in queries if q.lstrip().upper().startswith("SELECT")]


def stream_to_loopback(actor, *, enabled=True):
    cert, _key = self_signed()
    return siem_services.save_stream(
        reason="Evidence to the SIEM",
        actor=actor,
        host="127.0.0.1",
        port=6514,
        ca_cert=cert,
        enabled=enabled,
    )


@pytest.fixture
def quiet_owner():
    """An owner with neither webhook endpoints nor a SIEM stream."""
    owner = make_owner()
    admin = admin_of(owner)
    return owner, admin, make_user(owner, privilege_level=1)


@pytest.mark.django_db
def test_an_owner_without_receivers_pays_no_subscriber_query(quiet_owner):
    owner, admin, person = quiet_owner
    queries = rename(person, admin, "Ann")
    assert lookups(queries) == []
    assert not any("webhooks_" in q or "siem_" in q for q in queries)
    assert AuditChainHead.objects.get(chain=owner.pk).listeners == []


@pytest.mark.django_db
def test_receivers_once_configured_then_removed_cost_nothing_again(quiet_owner, receiver, settings):
    owner, admin, person = quiet_owner
    baseline = rename(person, admin, "Ann")
    endpoint, _ = services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Core",
        url=receiver.url,
        event_types=["user.changed"],
    )
    stream_to_loopback(admin)
    assert AuditChainHead.objects.get(chain=owner.pk).listeners == ["siem", "webhooks"]
    services.delete_endpoint(endpoint, reason="No longer used", actor=admin)
    stream_to_loopback(admin, enabled=False)
    assert AuditChainHead.objects.get(chain=owner.pk).listeners == []
    queries = rename(person, admin, "Anne")
    assert lookups(queries) == []
    assert len(queries) == len(baseline)


@pytest.mark.django_db
def test_webhooks_and_siem_together_cost_one_lookup(quiet_owner, receiver):
    owner, admin, person = quiet_owner
    baseline = rename(person, admin, "Ann")
    services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Core",
        url=receiver.url,
        event_types=["user.changed"],
    )
    stream_to_loopback(admin)
    rename(person, admin, "Anne")  # this process caches the endpoints under the owner's stamp
    queries = rename(person, admin, "Anna")
    (lookup,) = lookups(queries)
    assert "siem_siemstream" in lookup  # is a retry pending (else a flush is queued)
    assert len(selects(queries)) == len(selects(baseline)) + 1
    # The event went out to both: a delivery for the endpoint, a flush for the stream.
    assert WebhookDelivery.objects.filter(message__event_type="user.changed").count() == 2


@pytest.mark.django_db
def test_webhooks_alone_cost_one_lookup_then_none(quiet_owner, receiver):
    owner, admin, person = quiet_owner
    baseline = rename(person, admin, "Ann")
    services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Core",
        url=receiver.url,
        event_types=["user.changed"],
    )
    listening._endpoints_cache.clear()  # a process that has not seen this stamp yet
    (first,) = lookups(rename(person, admin, "Anne"))
    assert "webhooks_webhookendpoint" in first
    queries = rename(person, admin, "Anna")
    assert lookups(queries) == []
    assert len(selects(queries)) == len(selects(baseline))


@pytest.mark.django_db
def test_a_configuration_change_is_seen_by_the_next_event(quiet_owner, receiver):
    """The cache is keyed by the stamp each change moves: a new type or a disabled endpoint
    counts from the next event on, in every process."""
    owner, admin, person = quiet_owner
    endpoint, _ = services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Core",
        url=receiver.url,
        event_types=["user.created"],
    )
    rename(person, admin, "Ann")
    assert not WebhookDelivery.objects.filter(message__event_type="user.changed").exists()
    services.update_endpoint(
        endpoint,
        actor=admin,
        reason="Fewer events",
        name="Core",
        url=receiver.url,
        event_types=["user.changed"],
        enabled=True,
    )
    rename(person, admin, "Anne")
    assert WebhookDelivery.objects.filter(message__event_type="user.changed").count() == 1
    deliveries.disable(endpoint, "The receiver answered 410 Gone.")
    assert AuditChainHead.objects.get(chain=owner.pk).listeners == []
    rename(person, admin, "Anna")
    assert WebhookDelivery.objects.filter(message__event_type="user.changed").count() == 1
    run_due()
    assert len(receiver.of_type("user.changed")) == 0  # disabled before its turn came
