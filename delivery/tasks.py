"""The tasks of the outbox (Django's tasks framework; the database backend keeps them)."""

from django.tasks import task


@task()
def send_email(email_id: int) -> str:
    """Send one queued email (see `delivery.email.send`)."""
    from . import email

    return email.send(email_id)
