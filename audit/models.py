"""The audit log: append-only, hash-chained evidence of sign-ins, changes, views, security events.

This app imports no other app of the portal: people and records are referred to by id plus a
copied label, so an event reads right after its actor is renamed or gone.
"""

from __future__ import annotations

from django.db import models
from django.utils import timezone

from .choices import AuditAction, EventCategory


class AuditEvent(models.Model):
    """One piece of evidence. Written only by `audit.record`; never updated, never deleted.

    Events of one owner form a chain: `seq` counts them and `hash` covers the event's content and
    the previous event's hash, so that an edited or removed row is detected by `audit_verify`.
    """

    id = models.BigAutoField(primary_key=True)
    occurred_at = models.DateTimeField(default=timezone.now)
    owner_id = models.BigIntegerField(null=True, blank=True)
    action = models.CharField(max_length=60, choices=AuditAction.choices)
    category = models.CharField(max_length=20, choices=EventCategory.choices)

    actor_id = models.BigIntegerField(null=True, blank=True)
    actor_label = models.CharField(max_length=300, blank=True)
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=300, blank=True)
    subject_user_id = models.BigIntegerField(
        null=True, blank=True, help_text="The user this event is about, for per-user timelines."
    )

    changes = models.JSONField(default=dict, blank=True)
    reason = models.CharField(max_length=300, blank=True)
    details = models.TextField(blank=True)
    context = models.JSONField(default=dict, blank=True)

    request_id = models.CharField(max_length=64, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=400, blank=True)
    method = models.CharField(max_length=40, blank=True)

    chain = models.BigIntegerField(default=0)
    seq = models.PositiveBigIntegerField()
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            models.UniqueConstraint("chain", "seq", name="auditevent_unique_chain_seq"),
        ]
        indexes = [
            models.Index(fields=["owner_id", "-occurred_at", "-id"], name="audit_owner_time"),
            models.Index(
                fields=["owner_id", "category", "-occurred_at", "-id"], name="audit_owner_cat_time"
            ),
            models.Index(
                fields=["owner_id", "action", "-occurred_at", "-id"], name="audit_owner_action_time"
            ),
            models.Index(
                fields=["subject_user_id", "-occurred_at", "-id"], name="audit_subject_time"
            ),
            models.Index(fields=["actor_id", "-occurred_at", "-id"], name="audit_actor_time"),
            models.Index(fields=["ip", "-occurred_at", "-id"], name="audit_ip_time_id"),
            models.Index(fields=["target_type", "target_id"], name="audit_target"),
        ]

    def __str__(self) -> str:
        return (
            f"{self.occurred_at:%Y-%m-%d %H:%M:%S} {self.get_action_display()} {self.target_label}"
        )


class AuditChainHead(models.Model):
    """The latest link of one chain; locked while an event is appended so chains never fork.

    `listeners` names the subscribers that want this chain's events (`services.on_record(…,
    listener=NAME)`: webhooks, SIEM), and `listeners_stamp` changes with every change of their
    configuration (`services.set_listening`): `record` reads both from the row it locks anyway,
    so an owner with no receivers pays no query for them, and a subscriber may cache its
    configuration under the stamp.
    """

    chain = models.BigIntegerField(primary_key=True)
    seq = models.PositiveBigIntegerField(default=0)
    last_hash = models.CharField(max_length=64, default="0" * 64)
    listeners = models.JSONField(default=list, blank=True)
    listeners_stamp = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"chain {self.chain} at {self.seq}"
