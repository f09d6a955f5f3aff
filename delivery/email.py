"""Email through the outbox: `queue` writes the message in the caller's transaction, `send`
(run by the worker) delivers it, retrying with backoff while the mail server is away."""

from __future__ import annotations

import datetime
import logging

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import transaction
from django.tasks import task
from django.utils import timezone

from . import conf
from .choices import EmailState
from .models import OutboundEmail

log = logging.getLogger(__name__)


def queue(
    *,
    to: str,
    subject: str,
    body: str,
    kind: str,
    owner=None,
    user=None,
    send_before: datetime.datetime | None = None,
) -> OutboundEmail:
    """Put one email in the outbox, inside the caller's transaction; the worker sends it.

    The row and its task are written on the caller's connection, so a rolled-back action leaves
    no email behind and a committed one always has its email (sent once the server answers).
    """
    with transaction.atomic():
        email = OutboundEmail(
            owner_id=getattr(owner, "pk", owner),
            user=user,
            kind=kind,
            to=to,
            subject=" ".join(subject.split())[:300],
            send_before=send_before,
            max_attempts=conf.EMAIL_MAX_ATTEMPTS,
        )
        email.body = body
        email.save()
        send_email.enqueue(email.pk)
    return email


def send(email_id: int, *, now: datetime.datetime | None = None) -> str:
    """Send a queued email once; on failure record why and schedule the next attempt.

    The row is locked while the message goes out, so two workers never send it twice; a worker
    killed half-way leaves it queued (its transaction rolls back) for the next one. Return what
    happened, for the task's result.
    """
    now = now or timezone.now()
    with transaction.atomic():
        email = (
            OutboundEmail.objects.select_for_update(skip_locked=True)
            .filter(pk=email_id, state=EmailState.QUEUED)
            .first()
        )
        if email is None:
            return "nothing to send"
        if email.send_before is not None and now >= email.send_before:
            _give_up(email, "Not sent: what it carried expired before the mail server answered.")
            return "expired"
        email.attempts += 1
        email.last_attempt_at = now
        message = EmailMessage(
            subject=email.subject,
            body=email.body,
            to=[email.to],
            headers={"Message-ID": f"<{email.uid.hex}@{_mail_domain()}>"},
        )
        try:
            message.send()
        except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried
            error = f"{type(exc).__name__}: {exc}"[:300]
            log.warning("Email %s not sent (attempt %s): %s", email.pk, email.attempts, error)
            if email.attempts >= email.max_attempts:
                _give_up(email, error)
                return "failed"
            email.last_error = error
            email.next_attempt_at = now + datetime.timedelta(
                seconds=conf.backoff(email.attempts, conf.EMAIL_BACKOFF)
            )
            email.save()
            send_email.using(run_after=email.next_attempt_at).enqueue(email.pk)
            return "retrying"
        email.state = EmailState.SENT
        email.sent_at = now
        email.last_error = ""
        email.body_encrypted = ""
        email.save()
    return "sent"


def _give_up(email: OutboundEmail, error: str) -> None:
    email.state = EmailState.FAILED
    email.last_error = error[:300]
    email.body_encrypted = ""
    email.save()


def _mail_domain() -> str:
    sender = getattr(settings, "DEFAULT_FROM_EMAIL", "") or "localhost"
    return sender.rsplit("@", 1)[-1].strip(" >") or "localhost"


def requeue_overdue(now: datetime.datetime) -> int:
    """Enqueue a task again for queued emails long past their attempt time (a lost task)."""
    cutoff = now - datetime.timedelta(seconds=conf.overdue_seconds())
    ids = list(
        OutboundEmail.objects.filter(state=EmailState.QUEUED, next_attempt_at__lt=cutoff)
        .order_by("next_attempt_at")
        .values_list("pk", flat=True)[:1000]
    )
    with transaction.atomic():
        # Moved forward so that the next sweep does not enqueue them again while they wait.
        OutboundEmail.objects.filter(pk__in=ids).update(next_attempt_at=now)
        for pk in ids:
            send_email.enqueue(pk)
    return len(ids)


def purge_finished(before: datetime.datetime) -> int:
    """Delete emails sent or given up before `before` (their bodies are already wiped)."""
    deleted, _ = OutboundEmail.objects.filter(
        state__in=[EmailState.SENT, EmailState.FAILED], created_at__lt=before
    ).delete()
    return deleted


# The outbox worker runs this task (Django's tasks framework; the database backend keeps it).
@task()
def send_email(email_id: int) -> str:
    """Send one queued email (see `send`)."""
    return send(email_id)
