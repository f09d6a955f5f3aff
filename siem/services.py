"""Configuring an owner's SIEM stream: audited, the certificate and host checked first."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.models import AuditChainHead
from audit.services import diff, set_listening
from portal.reasons import required_reason

from .models import SiemStream
from .stream import LISTENER, check_host, tls_context

FIELDS = ("host", "port", "ca_cert", "client_cert", "enabled")


def save_stream(
    *,
    actor,
    reason: str,
    host: str,
    port: int,
    ca_cert: str,
    enabled: bool,
    client_cert: str = "",
    client_key: str = "",
) -> SiemStream:
    """Create or change the actor's owner's stream. A new stream starts at the chain's head:
    it carries the events from now on (the first record anchors the receiver's chain).

    `client_cert` and `client_key` (PEM) make the portal present a client certificate (mutual
    TLS). An empty key keeps the saved one (it is never shown again); an empty certificate
    turns mutual TLS off and forgets the key.
    """
    reason = required_reason(reason, "Say why the stream is configured or changed.")
    check_host(host, port)
    client_cert = (client_cert or "").strip()
    with transaction.atomic():
        stream = SiemStream.objects.select_for_update().filter(owner=actor.owner).first()
        if client_cert and not client_key and stream is not None:
            client_key = stream.client_key  # kept: the form never shows it
        if client_cert and not client_key:
            raise ValidationError({"client_key": "Give the PEM private key of the certificate."})
        tls_context(ca_cert, client_cert, client_key)
        before = {f: getattr(stream, f) for f in FIELDS} if stream else {}
        if stream is None:
            head = AuditChainHead.objects.filter(chain=actor.owner_id).first()
            stream = SiemStream(owner=actor.owner, last_sent_seq=head.seq if head else 0)
        stream.host, stream.port, stream.ca_cert, stream.enabled = host, port, ca_cert, enabled
        stream.client_cert = client_cert
        stream.client_key = client_key if client_cert else ""
        if enabled:
            stream.next_attempt_at = None  # try at once
        stream.updated_by = actor
        stream.updated_at = timezone.now()
        stream.save()
        set_listening(stream.owner_id, LISTENER, stream.enabled)
        after = {f: getattr(stream, f) for f in FIELDS}
        changes = diff(before, after)
        for field in ("ca_cert", "client_cert"):
            if field in changes:
                old, new = changes[field]
                changes[field] = [
                    "(previous certificate)" if old else None,
                    "(new certificate)" if new else None,
                ]
        audit.record(
            AuditAction.SETTINGS_ITEM_CREATED if not before else AuditAction.SETTINGS_ITEM_CHANGED,
            actor=actor,
            target=stream,
            changes=changes,
            details="SIEM stream configured",
            reason=reason,
        )
    return stream
