"""Configuring an owner's SIEM stream: audited, the certificate and host checked first."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.models import AuditChainHead
from audit.services import diff, set_listening

from .models import SiemStream
from .stream import LISTENER, check_host, tls_context

FIELDS = ("host", "port", "ca_cert", "enabled")


def save_stream(*, actor, host: str, port: int, ca_cert: str, enabled: bool) -> SiemStream:
    """Create or change the actor's owner's stream. A new stream starts at the chain's head:
    it carries the events from now on (the first record anchors the receiver's chain)."""
    check_host(host, port)
    tls_context(ca_cert)
    with transaction.atomic():
        stream = SiemStream.objects.select_for_update().filter(owner=actor.owner).first()
        before = {f: getattr(stream, f) for f in FIELDS} if stream else {}
        if stream is None:
            head = AuditChainHead.objects.filter(chain=actor.owner_id).first()
            stream = SiemStream(owner=actor.owner, last_sent_seq=head.seq if head else 0)
        stream.host, stream.port, stream.ca_cert, stream.enabled = host, port, ca_cert, enabled
        if enabled:
            stream.next_attempt_at = None  # try at once
        stream.updated_by = actor
        stream.updated_at = timezone.now()
        stream.save()
        set_listening(stream.owner_id, LISTENER, stream.enabled)
        after = {f: getattr(stream, f) for f in FIELDS}
        changes = diff(before, after)
        if "ca_cert" in changes:
            changes["ca_cert"] = ["(previous certificate)" if before else None, "(new certificate)"]
        audit.record(
            AuditAction.SETTINGS_ITEM_CREATED if not before else AuditAction.SETTINGS_ITEM_CHANGED,
            actor=actor,
            target=stream,
            changes=changes,
            details="SIEM stream configured",
        )
    return stream
