"""Evidence streamed out: RFC 5424 records over TLS to a real receiver, in chain order, whose
chain verifies from the records alone (`siem_verify`); an outage delays, never loses."""

from __future__ import annotations

import datetime
import subprocess
import sys
import time
from pathlib import Path
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts import users
from accounts.choices import AccessSource
from audit.models import AuditEvent
from delivery.worker import run_due
from roles import catalog
from siem import services, syslog, verify
from siem.models import SiemStream
from tests.access_helpers import assert_screen_access
from tests.builders import make_user

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def admin(owner):
    return make_user(
        owner,
        username="secops",
        grants={catalog.PARAMETERS: catalog.FULL, catalog.USERS: catalog.FULL},
        privilege_level=9,
    )


def configure(admin, receiver) -> SiemStream:
    return services.save_stream(
        reason="Evidence to the SIEM",
        actor=admin,
        host="127.0.0.1",
        port=receiver.port,
        ca_cert=receiver.cert_pem,
        enabled=True,
    )


def wait_for(condition, timeout=10):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def changes(admin, owner, count=3):
    for n in range(count):
        person = make_user(owner, username=f"leaver{n}", privilege_level=1)
        users.deactivate_user(person, actor=admin, reason="Left", source=AccessSource.SCREEN)


@pytest.mark.django_db
def test_records_arrive_in_order_and_the_chain_verifies_from_them_alone(
    syslog_receiver, admin, owner, tmp_path
):
    stream = configure(admin, syslog_receiver)
    changes(admin, owner)
    run_due()
    expected = list(
        AuditEvent.objects.filter(chain=owner.pk, seq__gt=stream_start(stream)).order_by("seq")
    )
    wait_for(lambda: len(syslog_receiver.records) >= len(expected))
    records = syslog_receiver.records
    assert [verify.parse(r)[0]["seq"] for r in records] == [str(e.seq) for e in expected]
    first = records[0]
    assert first.startswith("<110>1 ")  # log audit, informational; version 1
    params, message = verify.parse(first)
    assert params["hash"] == expected[0].hash and params["prev"] == expected[0].prev_hash
    assert message.startswith('{"action":')
    stream.refresh_from_db()
    assert stream.last_sent_seq == expected[-1].seq and stream.failures == 0

    path = syslog_receiver.write(tmp_path / "received.log")
    call_command("siem_verify", str(path))  # raises CommandError on a break
    # The same check without Django: the standard library only.
    done = subprocess.run(
        [sys.executable, str(ROOT / "siem" / "verify.py"), str(path)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout
    assert f"seq {expected[0].seq}-{expected[-1].seq}" in done.stdout


def stream_start(stream):
    """The seq the stream started after (its head when it was configured, plus its own event)."""
    return (
        AuditEvent.objects.filter(chain=stream.owner_id, action="settings_item_created")
        .order_by("seq")
        .values_list("seq", flat=True)
        .first()
        - 1
    )


@pytest.mark.django_db
def test_tampering_removal_and_reordering_are_found(syslog_receiver, admin, owner, tmp_path):
    stream = configure(admin, syslog_receiver)
    changes(admin, owner, count=4)
    run_due()
    sent = AuditEvent.objects.filter(chain=owner.pk, seq__gt=stream_start(stream)).count()
    assert sent >= 5
    wait_for(lambda: len(syslog_receiver.records) >= sent)
    records = list(syslog_receiver.records)
    assert verify.verify_lines(records).ok

    edited = records.copy()
    edited[2] = edited[2].replace('"reason":"Left"', '"reason":"Kept"')
    assert "content changed" in verify.report(verify.verify_lines(edited))[0]
    removed = records[:3] + records[4:]
    assert "missing" in verify.report(verify.verify_lines(removed))[0]
    swapped = records[:2] + [records[3], records[2]] + records[4:]
    assert not verify.verify_lines(swapped).ok
    duplicated = records[:5] + records[3:]
    assert verify.verify_lines(duplicated).ok  # a batch sent twice is harmless

    path = tmp_path / "edited.log"
    path.write_text("\n".join(edited) + "\n")
    with pytest.raises(CommandError):
        call_command("siem_verify", str(path))


@pytest.mark.django_db
def test_an_outage_delays_and_the_records_follow_in_order(syslog_receiver, admin, owner):
    stream = configure(admin, syslog_receiver)
    port = syslog_receiver.port
    syslog_receiver.stop()
    changes(admin, owner, count=2)  # the people's actions succeed while the SIEM is away
    run_due()
    stream.refresh_from_db()
    assert stream.failures == 1 and stream.last_error
    assert syslog_receiver.records == []

    syslog_receiver.start(port)
    with mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + datetime.timedelta(seconds=6)
    ):
        run_due()
    stream.refresh_from_db()
    head = AuditEvent.objects.filter(chain=owner.pk).order_by("-seq").first()
    assert stream.last_sent_seq == head.seq and stream.failures == 0
    sent = AuditEvent.objects.filter(chain=owner.pk, seq__gt=stream_start(stream)).count()
    wait_for(lambda: len(syslog_receiver.records) >= sent)
    assert verify.verify_lines(syslog_receiver.records).ok


@pytest.mark.django_db
def test_test_connection_button(signed_in, syslog_receiver, admin):
    client = signed_in(admin)
    response = client.post(
        "/settings/siem/",
        {
            "action": "save",
            "host": "127.0.0.1",
            "port": syslog_receiver.port,
            "ca_cert": syslog_receiver.cert_pem,
            "enabled": "on",
            "reason": "SOC onboarding",
        },
    )
    assert response.status_code == 302
    page = client.post("/settings/siem/", {"action": "test"}, follow=True).content.decode()
    assert "Connected to 127.0.0.1" in page
    wait_for(lambda: any(" test - " in r for r in syslog_receiver.records))
    assert AuditEvent.objects.filter(action="settings_item_created", target_type="siemstream")


@pytest.mark.django_db
def test_a_wrong_certificate_fails_the_test(syslog_receiver, admin):
    from tests.siem.conftest import self_signed

    other_ca, _ = self_signed()
    stream = configure(admin, syslog_receiver)
    stream.ca_cert = other_ca
    assert "CERTIFICATE_VERIFY_FAILED" in services_test(stream)


def services_test(stream):
    from siem.stream import test_connection

    return test_connection(stream)


@pytest.mark.django_db
def test_loopback_is_refused_unless_allowed(admin, settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    from tests.siem.conftest import self_signed

    with pytest.raises(ValidationError, match="loopback"):
        services.save_stream(
            reason="Evidence to the SIEM",
            actor=admin,
            host="127.0.0.1",
            port=6514,
            ca_cert=self_signed()[0],
            enabled=True,
        )
    with pytest.raises(ValidationError):
        services.save_stream(
            reason="Evidence to the SIEM",
            actor=admin,
            host="siem.example.com",
            port=6514,
            ca_cert="nonsense",
            enabled=True,
        )


@pytest.mark.django_db
def test_saving_the_stream_on_its_screen_needs_a_reason(signed_in, admin, syslog_receiver):
    receiver = syslog_receiver
    client = signed_in(admin)
    form = {"host": "127.0.0.1", "port": receiver.port, "ca_cert": receiver.cert_pem}
    refused = client.post("/settings/siem/", {**form, "enabled": "on"})
    assert refused.status_code == 400 and "This field is required." in refused.content.decode()
    assert not SiemStream.objects.exists()
    saved = client.post("/settings/siem/", {**form, "enabled": "on", "reason": "SOC onboarding"})
    assert saved.status_code == 302
    assert SiemStream.objects.get().enabled
    event = AuditEvent.objects.get(action="settings_item_created", details="SIEM stream configured")
    assert event.reason == "SOC onboarding"


@pytest.mark.django_db
def test_screen_access(signed_in, owner, admin):
    reader = make_user(owner, grants={catalog.PARAMETERS: catalog.READ}, privilege_level=5)
    nobody = make_user(owner, privilege_level=5)
    assert_screen_access(signed_in, ["/settings/siem/"], allowed=[admin, reader], denied=nobody)
    assert signed_in(reader).post("/settings/siem/", {"action": "test"}).status_code == 403


def test_record_format():
    event = mock.Mock(
        occurred_at=datetime.datetime(2026, 12, 4, 15, 0, 1, 2345, tzinfo=datetime.UTC),
        owner_id=7,
        chain=7,
        seq=12,
        pk=99,
        hash="a" * 64,
        prev_hash="b" * 64,
        action="user_deactivated",
        category="change",
    )
    with mock.patch("siem.syslog.hashed_content", return_value={"seq": 12}):
        text = syslog.record(event).decode()
    assert text.startswith("<110>1 2026-12-04T15:00:01.002345Z ")
    assert ' billing-access - user_deactivated [audit@32473 owner="7" chain="7" seq="12" ' in text
    assert text.endswith('] \ufeff{"seq":12}')
    assert syslog.frame(b"abc") == b"3 abc"


def test_a_name_resolving_to_mapped_loopback_is_refused(settings):
    from siem.stream import check_host

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = False
    mapped = [(10, 1, 6, "", ("::ffff:127.0.0.1", 6514, 0, 0))]
    with (
        mock.patch("socket.getaddrinfo", return_value=mapped),
        pytest.raises(ValidationError, match="loopback"),
    ):
        check_host("siem.example.com", 6514)
    private = [(2, 1, 6, "", ("10.0.0.5", 6514))]
    with mock.patch("socket.getaddrinfo", return_value=private):
        assert check_host("siem.internal", 6514) == "10.0.0.5"  # SIEMs live on private networks
