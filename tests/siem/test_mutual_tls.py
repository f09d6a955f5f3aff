"""Mutual TLS: the stream presents a client certificate to a receiver that requires one; without
it, or with one the receiver does not trust, nothing is sent and the cursor stays."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from accounts import users
from accounts.choices import AccessSource
from audit.models import AuditEvent
from roles import catalog
from siem import services, stream
from siem.models import SiemStream
from tests.builders import make_user

from .conftest import SyslogReceiver, self_signed

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin(owner):
    return make_user(
        owner,
        username="secops",
        grants={catalog.PARAMETERS: catalog.FULL, catalog.USERS: catalog.FULL},
        privilege_level=9,
    )


@pytest.fixture
def client_pair():
    """The portal's client certificate and key (self-signed: it is its own authority)."""
    return self_signed()


@pytest.fixture
def strict_receiver(settings, client_pair):
    """A syslog receiver that only takes clients whose certificate `client_pair` signed."""
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    receiver = SyslogReceiver(client_ca=client_pair[0])
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()


def configure(admin, receiver, cert="", key=""):
    return services.save_stream(
        reason="Evidence to the SIEM",
        actor=admin,
        host="127.0.0.1",
        port=receiver.port,
        ca_cert=receiver.cert_pem,
        enabled=True,
        client_cert=cert,
        client_key=key,
    )


def change(admin, owner, name):
    person = make_user(owner, username=name, privilege_level=1)
    users.deactivate_user(person, actor=admin, reason="Left", source=AccessSource.SCREEN)


def test_records_reach_a_receiver_that_requires_the_client_certificate(
    admin, owner, strict_receiver, client_pair
):
    cert, key = client_pair
    configured = configure(admin, strict_receiver, cert, key)
    assert key not in configured.client_key_encrypted  # kept encrypted
    change(admin, owner, "leaver")
    assert stream.flush(owner.pk).startswith("sent ")
    assert strict_receiver.clients, "the receiver saw no client certificate"
    subject = dict(item[0] for item in strict_receiver.clients[0]["subject"])
    assert subject["commonName"] == "test syslog receiver"
    last = AuditEvent.objects.filter(chain=owner.pk).order_by("-seq").first()
    assert f'seq="{last.seq}"' in strict_receiver.records[-1]
    assert "Connected" in stream.test_connection(SiemStream.objects.get(owner=owner))


@pytest.mark.parametrize("presented", ["none", "untrusted"])
def test_without_a_trusted_client_certificate_nothing_is_sent(
    admin, owner, strict_receiver, presented
):
    cert, key = ("", "") if presented == "none" else self_signed()
    configured = configure(admin, strict_receiver, cert, key)
    start = configured.last_sent_seq
    change(admin, owner, "leaver")
    assert stream.flush(owner.pk) == "retrying"
    refused = SiemStream.objects.get(owner=owner)
    assert refused.last_sent_seq == start and refused.failures == 1
    assert "SSL" in refused.last_error or "alert" in refused.last_error.lower()
    assert strict_receiver.records == []
    assert stream.test_connection(refused).startswith("Failed")


def test_the_key_must_match_and_is_kept_when_left_empty(admin, strict_receiver, client_pair):
    cert, key = client_pair
    with pytest.raises(ValidationError) as refused:
        configure(admin, strict_receiver, cert, self_signed()[1])
    assert "does not belong" in str(refused.value.message_dict["client_key"])
    with pytest.raises(ValidationError) as missing:
        configure(admin, strict_receiver, cert, "")
    assert "client_key" in missing.value.message_dict
    assert not SiemStream.objects.exists()
    configure(admin, strict_receiver, cert, key)
    kept = configure(admin, strict_receiver, cert, "")  # e.g. the port changed on the screen
    assert kept.client_key == key
    plain = configure(admin, strict_receiver)  # no certificate: mutual TLS off, key forgotten
    assert plain.client_cert == "" and plain.client_key_encrypted == ""
    event = AuditEvent.objects.filter(details="SIEM stream configured").order_by("-seq").first()
    assert event.changes["client_cert"] == ["(previous certificate)", None]
    assert key not in str(AuditEvent.objects.values_list("changes", flat=True))


def test_the_screen_takes_the_key_and_never_shows_it(
    signed_in, admin, strict_receiver, client_pair
):
    cert, key = client_pair
    client = signed_in(admin)
    response = client.post(
        "/settings/siem/",
        {
            "action": "save",
            "host": "127.0.0.1",
            "port": strict_receiver.port,
            "ca_cert": strict_receiver.cert_pem,
            "client_cert": cert,
            "client_key": key,
            "enabled": "on",
            "reason": "SOC onboarding",
        },
    )
    assert response.status_code == 302
    page = client.get("/settings/siem/").content.decode()
    assert "Client private key" in page
    assert key.splitlines()[1] not in page
    wrong = client.post(
        "/settings/siem/",
        {
            "action": "save",
            "host": "127.0.0.1",
            "port": strict_receiver.port,
            "ca_cert": strict_receiver.cert_pem,
            "client_cert": cert,
            "client_key": self_signed()[1],
            "enabled": "on",
            "reason": "Key rotated",
        },
    )
    assert wrong.status_code == 400
    assert "does not belong to the client certificate" in wrong.content.decode()
    assert SiemStream.objects.get().client_key == key.strip()
