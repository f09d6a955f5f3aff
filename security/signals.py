"""What the security app tells the apps above it, without knowing them."""

from django.dispatch import Signal

# Sent inside the transaction of a password change, after its audit event, when the person had
# a password before and the change did not come from their own recovery (which emails them on
# its own). Arguments: user, actor (None: the person through a link or a code). The account
# takeover emails (accounts.takeover) listen to it.
password_changed = Signal()
