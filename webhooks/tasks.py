"""An old address of a task: `webhooks.tasks.deliver_webhook` is now
`webhooks.deliveries.deliver_webhook`.

The task moved beside the code it runs; tasks queued before an upgrade still name it by this path.
"""

from .deliveries import deliver_webhook

__all__ = ["deliver_webhook"]
