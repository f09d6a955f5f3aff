"""An old address of a task: `delivery.tasks.send_email` is `delivery.email.send_email` now.

The task moved beside the code it runs; tasks queued before an upgrade still name it by this path.
"""

from .email import send_email

__all__ = ["send_email"]
