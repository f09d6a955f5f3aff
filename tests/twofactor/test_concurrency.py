"""Two simultaneous submissions of one recovery code, on two database connections: one wins."""

import threading

import pytest
from django.db import connection

from accounts import recovery
from accounts.twofactor import services as twofactor
from audit.models import AuditEvent
from roles import catalog
from tests.builders import make_totp_device, make_user

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_submissions_of_one_code_do_one_thing(owner):
    support = make_user(owner, grants={catalog.DP_ACCESS: catalog.FULL}, privilege_level=8)
    alice = make_user(owner, username="alice", privilege_level=3)
    make_totp_device(alice)
    row = recovery.send_recovery_code(alice, actor=support, reason="ticket 3")
    start = threading.Barrier(2)
    outcomes = []

    def submit():
        try:
            start.wait(timeout=10)
            recovery.use_recovery_code(row.pk, action=recovery.ACTION_REMOVE_2FA)
            outcomes.append("done")
        except recovery.RecoveryRefused:
            outcomes.append("refused")
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["done", "refused"]
    assert AuditEvent.objects.filter(action="recovery_code_used").count() == 1
    assert AuditEvent.objects.filter(action="totp_removed").count() == 1
    assert not twofactor.has_confirmed_device(alice)
