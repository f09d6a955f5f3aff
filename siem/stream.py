"""Streaming an owner's audit events to their SIEM, in chain order, from the worker.

`on_audit_event` (inside `audit.record`'s transaction) enqueues a flush of the owner's stream.
A flush locks the stream's row (one flush per owner at a time; a second one waits, then sends
what is left), sends every event after the cursor over one TLS connection, and moves the cursor
only once they are written. A receiver that is away is tried again after 5 s, 30 s, 1, 5, 15
minutes and then every 30 minutes; events wait in the audit table meanwhile, nothing is lost.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import socket
import ssl
import tempfile

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.tasks import task
from django.utils import timezone

from audit.models import AuditEvent
from delivery import conf as delivery_conf

from . import syslog
from .models import SiemStream

log = logging.getLogger(__name__)

BATCH = 500
BACKOFF = (5, 30, 60, 300, 900, 1800)
CONNECT_TIMEOUT = 5
WRITE_TIMEOUT = 10
VERDICT_SECONDS = 0.3


LISTENER = "siem"


def on_audit_event(event, stamp: int) -> None:
    """Enqueue a flush of the owner's stream (same transaction as the event).

    Registered as the audit listener `siem`: it runs only for owners whose stream is enabled
    (`siem.services.save_stream` turns the listener on and off), so others pay no query.
    """
    if event.owner_id is None:
        return
    # A stream waiting for its retry has that retry's flush queued, which sends this one too.
    due = Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=event.occurred_at)
    if SiemStream.objects.filter(due, owner_id=event.owner_id, enabled=True).exists():
        flush_stream.enqueue(event.owner_id)


def check_host(host: str, port: int) -> str:
    """Resolve the receiver; refuse loopback, link-local and unspecified addresses (SSRF)
    unless WEBHOOK_ALLOW_PRIVATE_ADDRESSES is on. Private networks are allowed: that is where
    SIEMs live, and the TLS certificate, checked against the owner's CA, says who answers."""
    try:
        found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise ValidationError(f"{host} cannot be resolved.") from exc
    address = str(found[0][4][0])
    if not getattr(settings, "WEBHOOK_ALLOW_PRIVATE_ADDRESSES", False):
        for info in found:
            ip = ipaddress.ip_address(info[4][0])
            if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
                ip = ip.ipv4_mapped
            if ip.is_loopback or ip.is_link_local or ip.is_unspecified or ip.is_multicast:
                raise ValidationError(
                    f"{host} resolves to {ip}, a loopback or link-local address: refused."
                )
    return address


def tls_context(ca_cert: str, client_cert: str = "", client_key: str = "") -> ssl.SSLContext:
    """Return the client TLS context: the receiver's CA, and the portal's certificate and key
    when the stream has one (mutual TLS). Raise ValidationError naming the field at fault."""
    try:
        context = ssl.create_default_context(cadata=ca_cert)
    except (ssl.SSLError, ValueError) as exc:
        raise ValidationError({"ca_cert": "This is not a PEM certificate."}) from exc
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if client_cert:
        load_client_certificate(context, client_cert, client_key)
    return context


def load_client_certificate(context: ssl.SSLContext, cert: str, key: str) -> None:
    """Load a PEM certificate and its key into `context` (ssl reads them only from files: two
    private temporary files, removed at once)."""
    if "PRIVATE KEY" not in key:
        raise ValidationError({"client_key": "Give the PEM private key of the client certificate."})
    with tempfile.TemporaryDirectory() as folder:
        cert_path, key_path = os.path.join(folder, "cert.pem"), os.path.join(folder, "key.pem")
        for path, text in ((cert_path, cert), (key_path, key)):
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(text)
        try:
            context.load_cert_chain(cert_path, key_path)
        except ssl.SSLError as exc:
            if "KEY_VALUES_MISMATCH" in str(exc) or "key values mismatch" in str(exc):
                raise ValidationError(
                    {"client_key": "This key does not belong to the client certificate."}
                ) from exc
            raise ValidationError(
                {"client_cert": "This is not a PEM certificate with a matching PEM key."}
            ) from exc
        except (ValueError, UnicodeError) as exc:
            raise ValidationError({"client_cert": "This is not a PEM certificate."}) from exc


def send(stream: SiemStream, records: list[bytes]) -> None:
    """Send framed records over one TLS connection; raise OSError/ValidationError on failure."""
    address = check_host(stream.host, stream.port)
    context = tls_context(stream.ca_cert, stream.client_cert, stream.client_key)
    with socket.create_connection((address, stream.port), timeout=CONNECT_TIMEOUT) as raw:
        raw.settimeout(WRITE_TIMEOUT)
        with context.wrap_socket(raw, server_hostname=stream.host) as conn:
            # Written is delivered: syslog over TLS has no acknowledgement (RFC 5425); but a
            # refusal of the connection that comes after the handshake is waited for.
            conn.sendall(b"".join(syslog.frame(r) for r in records))
            _await_verdict(conn)


def _await_verdict(conn: ssl.SSLSocket) -> None:
    """Wait briefly for a refusal that comes after the handshake, before calling it delivered.

    In TLS 1.3 the receiver checks the client's certificate (or its absence, when it requires
    one) after the client's side of the handshake is over: the refusal arrives as an alert on
    the next read, and what was written is thrown away. So the portal reads for
    `VERDICT_SECONDS` after writing: an alert raises (the flush is retried, the cursor stays;
    a receiver that did keep the records ignores them the second time, by seq and hash), and
    silence or a clean close means the records were taken.
    """
    conn.settimeout(VERDICT_SECONDS)
    try:
        conn.recv(1)
    except TimeoutError:
        pass


def test_connection(stream: SiemStream) -> str:
    """Connect and send one test record; return what happened, in words."""
    try:
        send(stream, [syslog.test_record(timezone.now())])
    except ValidationError as exc:
        return f"Refused: {exc.messages[0]}"
    except (OSError, ssl.SSLError) as exc:
        return f"Failed: {type(exc).__name__}: {exc}"[:300]
    return f"Connected to {stream.host}:{stream.port} over TLS and sent a test record."


def flush(owner_id: int, *, now: datetime.datetime | None = None) -> str:
    """Send the owner's events after the cursor, in seq order; return what happened."""
    with transaction.atomic():
        stream = SiemStream.objects.select_for_update().filter(owner_id=owner_id).first()
        if stream is None or not stream.enabled:
            return "no stream"
        now = now or timezone.now()
        if stream.next_attempt_at is not None and now < stream.next_attempt_at:
            return "waiting for the retry"
        events = list(
            AuditEvent.objects.filter(chain=owner_id, seq__gt=stream.last_sent_seq).order_by("seq")[
                :BATCH
            ]
        )
        if not events:
            return "up to date"
        try:
            send(stream, [syslog.record(e) for e in events])
        except (OSError, ssl.SSLError, ValidationError) as exc:
            error = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
            stream.failures += 1
            stream.last_error = f"{type(exc).__name__}: {error}"[:300]
            stream.next_attempt_at = now + datetime.timedelta(
                seconds=delivery_conf.backoff(stream.failures, BACKOFF)
            )
            stream.save()
            flush_stream.using(run_after=stream.next_attempt_at).enqueue(owner_id)
            log.warning("SIEM stream of owner %s failed: %s", owner_id, stream.last_error)
            return "retrying"
        stream.last_sent_seq = events[-1].seq
        stream.last_sent_at = now
        stream.failures = 0
        stream.last_error = ""
        stream.next_attempt_at = None
        stream.save()
        if len(events) == BATCH:
            flush_stream.enqueue(owner_id)  # more to send: another task, so others get a turn
    return f"sent {len(events)}"


def requeue_overdue(now: datetime.datetime) -> int:
    """Enqueue a flush for enabled streams behind their chain with no retry pending soon."""
    cutoff = now - datetime.timedelta(seconds=delivery_conf.overdue_seconds())
    count = 0
    for stream in SiemStream.objects.filter(enabled=True):
        waiting = stream.next_attempt_at is not None and stream.next_attempt_at > cutoff
        behind = AuditEvent.objects.filter(
            chain=stream.owner_id,
            seq__gt=stream.last_sent_seq,
            occurred_at__lt=cutoff,
        ).exists()
        if behind and not waiting:
            flush_stream.enqueue(stream.owner_id)
            count += 1
    return count


# The outbox worker runs this task (Django's tasks framework; the database backend keeps it).
@task()
def flush_stream(owner_id: int) -> str:
    """Send the owner's pending audit events to their SIEM (see `flush`)."""
    return flush(owner_id)
