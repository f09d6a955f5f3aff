"""The worker as a real process (`manage.py deliver`): killed in the middle of a delivery and
started again, every event still arrives, and a message sent twice carries the same id."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.db import connection

from accounts import users
from accounts.choices import AccessSource
from roles import catalog
from tests.builders import make_user
from webhooks import services
from webhooks.models import WebhookDelivery, WebhookMessage

ROOT = Path(__file__).resolve().parents[2]
# Starts worker processes and waits out a lease: about 15 s.
pytestmark = [pytest.mark.servers, pytest.mark.xdist_group("servers")]


def start_worker(lease: int = 5) -> subprocess.Popen:
    settings = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": (
            f"postgres://{settings['USER'] or 'postgres'}@{settings['HOST'] or '127.0.0.1'}:"
            f"{settings['PORT'] or 5432}/{settings['NAME']}"
        ),
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        "DELIVERY_LEASE_SECONDS": str(lease),
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "deliver", "--no-startup-delay", "--interval", "0.1"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(condition, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"Timed out waiting for {what}.")


@pytest.mark.django_db(transaction=True)
def test_worker_killed_mid_delivery_then_restarted_delivers_everything(receiver, owner):
    admin = make_user(
        owner,
        grants={catalog.PARAMETERS: catalog.FULL, catalog.USERS: catalog.FULL},
        privilege_level=9,
    )
    _, receiver.secret = services.create_endpoint(
        reason="Receives our change events",
        actor=admin,
        name="Core",
        url=receiver.url,
        event_types=["user.deactivated"],
    )
    people = [make_user(owner, username=f"p{n}", privilege_level=1) for n in range(5)]
    for person in people:
        users.deactivate_user(person, actor=admin, reason="Left", source=AccessSource.SCREEN)
    expected = set(WebhookMessage.objects.values_list("msg_id", flat=True))
    assert len(expected) == 5

    receiver.hang = 30  # the first delivery hangs: the worker is killed while waiting for it
    worker = start_worker()
    try:
        assert receiver.arrived.wait(30), "the worker never called the receiver"
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
        receiver.hang = 0
        (first,) = [r["id"] for r in receiver.received]
        assert WebhookDelivery.objects.filter(state="delivered").count() == 0

        worker = start_worker()  # its housekeeping hands back the dead worker's task
        wait_for(
            lambda: WebhookDelivery.objects.filter(state="delivered").count() == 5,
            timeout=60,
            what="every delivery",
        )
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(15)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
    ids = [r["id"] for r in receiver.received]
    assert set(ids) == expected  # every event arrived
    assert ids.count(first) == 2  # the interrupted one twice, with the same id
    assert len(ids) == 6
    assert all(r["verified"] for r in receiver.received)
