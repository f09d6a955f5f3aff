"""Where an owner's audit events are streamed, and how far the stream has got."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from portal import encryption


class SiemStream(models.Model):
    """An owner's syslog-over-TLS destination and its cursor in the owner's audit chain.

    `last_sent_seq` is the sequence number of the last event the receiver accepted: the audit
    table itself is the outbox, so no event can be skipped and each goes out in chain order.
    With `client_cert` (and its key, kept encrypted with FIELD_ENCRYPTION_KEY) the portal
    presents a client certificate: mutual TLS, for receivers that only take known senders.
    """

    owner = models.OneToOneField("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    host = models.CharField(max_length=253)
    port = models.PositiveIntegerField(default=6514)
    ca_cert = models.TextField(
        help_text="PEM certificate(s) of the authority that signed the receiver's certificate."
    )
    client_cert = models.TextField(
        blank=True,
        help_text="PEM certificate the portal presents to the receiver (mutual TLS); optional.",
    )
    client_key_encrypted = models.TextField(blank=True, default="")
    enabled = models.BooleanField(default=True)
    last_sent_seq = models.PositiveBigIntegerField(default=0)
    last_sent_at = models.DateTimeField(null=True, blank=True)
    failures = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=300, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"SIEM stream to {self.host}:{self.port}"

    @property
    def label(self) -> str:
        return str(self)

    @property
    def client_key(self) -> str:
        if not self.client_key_encrypted:
            return ""
        return encryption.decrypt(self.client_key_encrypted).decode("ascii")

    @client_key.setter
    def client_key(self, value: str) -> None:
        self.client_key_encrypted = encryption.encrypt(value.encode("ascii")) if value else ""
