"""The webhook task (Django's tasks framework; the database backend keeps it)."""

from django.tasks import task


@task()
def deliver_webhook(delivery_id: int) -> str:
    """Make one attempt at a webhook delivery (see `webhooks.deliveries.deliver`)."""
    from . import deliveries

    return deliveries.deliver(delivery_id)
