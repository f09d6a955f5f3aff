"""The outbox of email: one row per message and recipient, written with the action that sends it.

The body is kept encrypted (FIELD_ENCRYPTION_KEY) only while the message waits: it holds
set-password links and recovery codes, so it is wiped once the message is sent or given up. The
subject, recipient and delivery state stay, for the user record.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal import encryption

from .choices import EmailKind, EmailState


class OutboundEmail(models.Model):
    """One email to one address, sent by the worker (`delivery.email.send`) with retries."""

    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    owner = models.ForeignKey(
        "accounts.Owner", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="outbound_emails",
        help_text="The person the email is addressed to, when they have an account.",
    )
    kind = models.CharField(max_length=30, choices=EmailKind.choices)
    to = models.EmailField()
    subject = models.CharField(max_length=300)
    body_encrypted = models.TextField(blank=True)
    state = models.CharField(max_length=10, choices=EmailState.choices, default=EmailState.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    max_attempts = models.PositiveSmallIntegerField(default=10)
    last_error = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    next_attempt_at = models.DateTimeField(default=timezone.now)
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    send_before = models.DateTimeField(
        null=True, blank=True, help_text="Not sent after this (the link or code inside expired)."
    )

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "-created_at"], name="outbound_email_user"),
            models.Index(
                fields=["next_attempt_at"],
                name="outbound_email_due",
                condition=models.Q(state="queued"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} to {self.to} ({self.get_state_display()})"

    @property
    def body(self) -> str:
        """The plain body, while the message waits; empty once sent or given up."""
        if not self.body_encrypted:
            return ""
        return encryption.decrypt(self.body_encrypted).decode("utf-8")

    @body.setter
    def body(self, text: str) -> None:
        self.body_encrypted = encryption.encrypt(text.encode("utf-8")) if text else ""

    @property
    def retries_left(self) -> int:
        if self.state != EmailState.QUEUED:
            return 0
        return max(0, self.max_attempts - self.attempts)
