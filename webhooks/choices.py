"""Event types that subscribers choose from, and the states of a delivery."""

from django.db import models


class EventType(models.TextChoices):
    USER_CREATED = "user.created", "User created"
    USER_CHANGED = "user.changed", "User changed"
    USER_DEACTIVATED = "user.deactivated", "User deactivated"
    USER_REACTIVATED = "user.reactivated", "User reactivated"
    USER_DELETED = "user.deleted", "User deleted"
    PERMISSIONS_CHANGED = "permissions.changed", "Permissions of a user changed"
    SESSIONS_ENDED = "sessions.ended", "Sessions ended"
    PASSWORD_CHANGED = "password.changed", "Password changed or set"
    AUTHENTICATORS_CHANGED = "authenticators.changed", "Two-factor device or backup codes changed"
    ELEVATION_STARTED = "elevation.started", "Elevation started"
    ELEVATION_ENDED = "elevation.ended", "Elevation ended"
    ROLE_CHANGED = "role.changed", "Role created, changed or deleted"
    ROLE_GROUP_CHANGED = "role_group.changed", "Role group or its matrix changed"
    AUDIT_RECORDED = "audit.recorded", "Every audit event, with its chain hash (evidence)"


# Sent only by "Send a test event"; never subscribed to.
TEST_EVENT = "webhook.test"


class DeliveryState(models.TextChoices):
    PENDING = "pending", "Pending"
    DELIVERED = "delivered", "Delivered"
    FAILED = "failed", "Failed"
