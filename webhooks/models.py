"""Webhook endpoints of an owner, the messages sent to them and each delivery's fate."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal import encryption

from .choices import DeliveryState


class WebhookEndpointQuerySet(models.QuerySet):
    def for_owner(self, owner):
        return self.filter(owner=owner)


class WebhookEndpoint(models.Model):
    """A receiver of change events: its URL, the types it wants and the secret that signs them.

    The secret is needed to sign every delivery, so it is kept encrypted (FIELD_ENCRYPTION_KEY),
    not hashed; it is shown once, when created or rotated. After a rotation the previous secret
    signs too (a second `v1,` signature) until `previous_secret_until`, so that the receiver can
    switch to the new one without refusing a delivery.
    """

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=120)
    url = models.URLField(max_length=500)
    event_types = models.JSONField(default=list)
    secret_encrypted = models.TextField()
    previous_secret_encrypted = models.TextField(blank=True, default="")
    previous_secret_until = models.DateTimeField(null=True, blank=True)
    secret_rotated_at = models.DateTimeField(null=True, blank=True)
    enabled = models.BooleanField(default=True)
    disabled_reason = models.CharField(max_length=300, blank=True)
    failing_since = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = WebhookEndpointQuerySet.as_manager()

    class Meta:
        ordering = ["name", "pk"]
        indexes = [models.Index(fields=["owner", "enabled"], name="webhook_endpoint_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return f"Webhook {self.name}"

    @property
    def secret(self) -> str:
        return encryption.decrypt(self.secret_encrypted).decode("ascii")

    @secret.setter
    def secret(self, value: str) -> None:
        self.secret_encrypted = encryption.encrypt(value.encode("ascii"))

    @property
    def previous_secret(self) -> str:
        if not self.previous_secret_encrypted:
            return ""
        return encryption.decrypt(self.previous_secret_encrypted).decode("ascii")

    @previous_secret.setter
    def previous_secret(self, value: str) -> None:
        self.previous_secret_encrypted = encryption.encrypt(value.encode("ascii")) if value else ""

    def rotating(self, now=None) -> bool:
        """Say whether the previous secret still signs (a rotation's overlap is running)."""
        until = self.previous_secret_until
        return (
            bool(self.previous_secret_encrypted)
            and until is not None
            and ((now or timezone.now()) < until)
        )

    def signing_secrets(self, now=None) -> list[str]:
        """Return the secrets that sign a delivery now: the current one, then the previous one
        while a rotation's overlap runs."""
        found = [self.secret]
        if self.rotating(now):
            found.append(self.previous_secret)
        return found

    def wants(self, event_type: str) -> bool:
        return event_type in self.event_types


class WebhookMessage(models.Model):
    """One event as sent: its id (the `webhook-id` receivers deduplicate on), type and exact body.

    The body is kept as the bytes that were signed, so a retry or "send again" is identical.
    """

    msg_id = models.CharField(max_length=40, unique=True)
    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    event_type = models.CharField(max_length=40)
    body = models.TextField()
    audit_event_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.event_type} {self.msg_id}"


class WebhookDelivery(models.Model):
    """The delivery of one message to one endpoint: attempts, the last answer, the outcome."""

    message = models.ForeignKey(WebhookMessage, on_delete=models.CASCADE, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.CASCADE, related_name="deliveries"
    )
    state = models.CharField(
        max_length=10, choices=DeliveryState.choices, default=DeliveryState.PENDING
    )
    attempts = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.CharField(max_length=300, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["endpoint", "-created_at"], name="webhook_delivery_endpoint"),
            models.Index(
                fields=["next_attempt_at"],
                name="webhook_delivery_due",
                condition=models.Q(state="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.message} to {self.endpoint} ({self.get_state_display()})"
