"""Email through the outbox: written with the action, sent by the worker, retried while the mail
server is away, shown on the user record, its content never kept in clear."""

from __future__ import annotations

import datetime
import email as email_lib
import re
from unittest import mock

import pytest
from django.core import mail
from django.db import connection, transaction
from django.tasks import TaskResultStatus
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts import services as account_services
from delivery import email as outbox
from delivery import sweeps, worker
from delivery.choices import EmailKind, EmailState
from delivery.models import OutboundEmail
from roles import catalog
from tests.builders import make_user

LINK_RE = re.compile(r"http://127\.0\.0\.1:8000(/set-password/[^/\s]+/)")


@pytest.fixture
def support(owner):
    return make_user(
        owner,
        username="support",
        grants={catalog.USERS: catalog.FULL, catalog.DP_ACCESS: catalog.FULL},
        privilege_level=8,
    )


@pytest.fixture
def alice(owner):
    return make_user(owner, username="alice", email="alice@example.test", privilege_level=3)


def later(**delta):
    """Patch the clock forward by `delta` (the worker's due check reads timezone.now)."""
    return mock.patch(
        "django.utils.timezone.now", return_value=timezone.now() + datetime.timedelta(**delta)
    )


# The enqueue is part of the change's transaction -------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_action_leaves_no_email_and_no_task(owner):
    class Undo(Exception):
        pass

    with pytest.raises(Undo), transaction.atomic():
        outbox.queue(
            to="a@example.test", subject="Hi", body="secret", kind=EmailKind.ACCOUNT_NOTICE
        )
        assert DBTaskResult.objects.count() == 1  # written at once, not on commit
        raise Undo
    assert OutboundEmail.objects.count() == 0
    assert DBTaskResult.objects.count() == 0

    with transaction.atomic():
        email = outbox.queue(
            to="a@example.test", subject="Hi", body="secret", kind=EmailKind.ACCOUNT_NOTICE
        )
    (task,) = DBTaskResult.objects.all()
    assert task.status == TaskResultStatus.READY
    assert task.task_path == "delivery.email.send_email"
    assert task.args_kwargs == {"args": [email.pk], "kwargs": {}}


@pytest.mark.django_db(transaction=True)
def test_a_failed_access_email_action_leaves_nothing(owner, support):
    api_user = make_user(owner, username="robot", kind="api")
    with pytest.raises(Exception, match="API user"):
        account_services.send_access_email(api_user, actor=support)
    assert OutboundEmail.objects.count() == 0
    assert DBTaskResult.objects.count() == 0


# SMTP away: the action succeeds, the mail goes out once the server is back -----------------


@pytest.mark.django_db
def test_access_email_goes_out_once_the_mail_server_is_back(
    mail_server, owner, support, alice, client
):
    link = account_services.send_access_email(alice, actor=support)  # the server is stopped
    assert link.sent_to == "alice@example.test"
    (email,) = OutboundEmail.objects.filter(user=alice)
    assert email.state == EmailState.QUEUED

    worker.run_due()
    email.refresh_from_db()
    assert email.state == EmailState.QUEUED
    assert email.attempts == 1
    assert "ConnectionRefusedError" in email.last_error
    assert email.next_attempt_at > timezone.now()
    assert mail_server.messages == []

    mail_server.start()
    worker.run_due()  # the retry is not due yet
    assert mail_server.messages == []
    with later(seconds=31):
        worker.run_due()
    email.refresh_from_db()
    assert email.state == EmailState.SENT
    assert email.attempts == 2
    assert email.body_encrypted == ""  # the link is not kept once sent
    ((recipients, text),) = mail_server.messages
    assert recipients == ["alice@example.test"]
    assert f"Message-ID: <{email.uid.hex}@" in text

    # The emailed link works once, as before the outbox.
    body = email_lib.message_from_string(text).get_payload(decode=True).decode()
    path = LINK_RE.search(body).group(1)
    new_password = "a brand new passphrase for alice"
    assert client.get(path)["Location"] == "/set-password/"
    done = client.post("/set-password/", {"password1": new_password, "password2": new_password})
    assert done.status_code == 302
    alice.refresh_from_db()
    assert alice.check_password(new_password)
    assert client.get(path, follow=True).status_code == 400  # used up


@pytest.mark.django_db
def test_body_is_encrypted_while_it_waits(owner, support, alice):
    account_services.send_access_email(alice, actor=support)
    (email,) = OutboundEmail.objects.filter(user=alice)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT body_encrypted, subject FROM delivery_outboundemail WHERE id = %s", [email.pk]
        )
        stored, subject = cursor.fetchone()
    assert "/set-password/" not in stored
    assert stored.startswith("gAAAA")  # Fernet
    assert "/set-password/" in email.body
    assert "set-password" not in subject


@pytest.mark.django_db
def test_gives_up_after_the_last_attempt_and_wipes_the_body(owner, mail_server):
    email = outbox.queue(
        to="a@example.test", subject="Notice", body="text", kind=EmailKind.ACCOUNT_NOTICE
    )
    OutboundEmail.objects.filter(pk=email.pk).update(max_attempts=2)
    worker.run_due()
    with later(hours=1):
        worker.run_due()
    email.refresh_from_db()
    assert email.state == EmailState.FAILED
    assert email.attempts == 2
    assert email.body_encrypted == ""
    assert email.retries_left == 0


@pytest.mark.django_db
def test_a_recovery_code_is_not_sent_after_it_expired(owner, support, alice, mail_server):
    from accounts import recovery

    recovery.send_recovery_code(alice, actor=support, reason="ticket 1")
    (email,) = OutboundEmail.objects.filter(user=alice, kind=EmailKind.RECOVERY_CODE)
    assert email.send_before is not None
    mail_server.start()
    with later(minutes=31):
        worker.run_due()
    email.refresh_from_db()
    assert email.state == EmailState.FAILED
    assert "expired" in email.last_error
    assert mail_server.messages == []


@pytest.mark.django_db
def test_locmem_delivery_through_the_worker(owner, support, alice):
    account_services.send_access_email(alice, actor=support)
    assert mail.outbox == []  # nothing is sent inside the request
    worker.run_due()
    (message,) = mail.outbox
    assert message.to == ["alice@example.test"]


# A dead worker's task is taken over ---------------------------------------------------------


@pytest.mark.django_db
def test_a_task_left_running_by_a_dead_worker_runs_again_after_the_lease(owner, settings):
    settings.DELIVERY_LEASE_SECONDS = 60
    email = outbox.queue(to="a@example.test", subject="Hi", body="b", kind=EmailKind.ACCOUNT_NOTICE)
    task = DBTaskResult.objects.get()
    task.claim("dead-worker")  # claimed, then the worker died
    worker.run_due()
    assert mail.outbox == []
    assert sweeps.recover_abandoned() == 0  # within the lease: maybe still running
    with later(seconds=61):
        assert sweeps.recover_abandoned() == 1
    worker.run_due()
    assert [m.to for m in mail.outbox] == [["a@example.test"]]
    email.refresh_from_db()
    assert email.state == EmailState.SENT


@pytest.mark.django_db
def test_an_overdue_email_whose_task_was_lost_gets_a_new_one(owner, settings):
    email = outbox.queue(to="a@example.test", subject="Hi", body="b", kind=EmailKind.ACCOUNT_NOTICE)
    DBTaskResult.objects.all().delete()  # lost
    assert sweeps.housekeep()["overdue_emails"] == 0
    with later(minutes=11):
        assert sweeps.housekeep()["overdue_emails"] == 1
        assert sweeps.housekeep()["overdue_emails"] == 0  # not twice
        worker.run_due()
    email.refresh_from_db()
    assert email.state == EmailState.SENT


# The user record shows each email's delivery state ------------------------------------------


@pytest.mark.django_db
def test_user_record_shows_delivery_state_never_the_content(
    owner, support, alice, signed_in, mail_server
):
    account_services.send_access_email(alice, actor=support)
    client = signed_in(support)
    page = client.get(f"/users/{alice.pk}/security/").content.decode()
    assert "Access email" in page and "Queued" in page
    assert "/set-password/" not in page

    worker.run_due()  # refused: retrying
    page = client.get(f"/users/{alice.pk}/security/").content.decode()
    assert "Retrying" in page and "9 left" in page
    assert "ConnectionRefusedError" in page

    mail_server.start()
    with later(seconds=31):
        worker.run_due()
    page = client.get(f"/users/{alice.pk}/security/").content.decode()
    assert "Sent" in page
    assert "/set-password/" not in page


@pytest.mark.django_db
def test_purge_outbox_deletes_finished_rows_past_the_cutoff(owner):
    from django.core.management import call_command

    old = outbox.queue(to="a@example.test", subject="Old", body="b", kind=EmailKind.ACCOUNT_NOTICE)
    waiting = outbox.queue(
        to="b@example.test", subject="Waiting", body="b", kind=EmailKind.ACCOUNT_NOTICE
    )
    worker.run_due(max_tasks=1)  # sends the first
    assert OutboundEmail.objects.get(pk=old.pk).state == EmailState.SENT
    with later(days=91):
        call_command("purge_outbox", "--days", "90")
    assert list(OutboundEmail.objects.values_list("pk", flat=True)) == [waiting.pk]  # queued stays
