"""Change events for subscribers: owner-registered endpoints receive signed webhooks.

Events come from one place, the audit log: `audit.record` calls `events.on_audit_event` inside the
change's transaction (registered in `WebhooksConfig.ready`), which writes the message and one
delivery per subscribed endpoint to the outbox; the worker posts them, signed by the Standard
Webhooks conventions, retrying for up to 24 hours.
"""
