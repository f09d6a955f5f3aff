"""A real syslog receiver over TLS: a self-signed certificate made here, octet-counted frames."""

from __future__ import annotations

import datetime
import ipaddress
import socket
import ssl
import tempfile
import threading
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def self_signed() -> tuple[str, str]:
    """Return (certificate PEM, key PEM) for 127.0.0.1 and localhost, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test syslog receiver")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


class SyslogReceiver:
    """Accepts TLS connections on 127.0.0.1 and keeps every framed record, in arrival order.

    With `client_ca` (PEM) it requires a client certificate signed by it (mutual TLS) and
    keeps the subject of each client it accepted in `clients`.
    """

    def __init__(self, client_ca: str = ""):
        self.cert_pem, key_pem = self_signed()
        folder = Path(tempfile.mkdtemp())
        (folder / "cert.pem").write_text(self.cert_pem)
        (folder / "key.pem").write_text(key_pem)
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        if client_ca:
            self.context.verify_mode = ssl.CERT_REQUIRED
            self.context.load_verify_locations(cadata=client_ca)
        self.clients: list[dict] = []
        self.records: list[str] = []
        self.lock = threading.Lock()
        self.listener = None
        self.port = None

    def start(self, port: int = 0):
        self.listener = socket.create_server(("127.0.0.1", port))
        self.port = self.listener.getsockname()[1]
        threading.Thread(target=self._serve, args=(self.listener,), daemon=True).start()

    def stop(self):
        if self.listener is not None:
            try:
                self.listener.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread
            except OSError:
                pass
            self.listener.close()
            self.listener = None

    def _serve(self, listener):
        while True:
            try:
                raw, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=self._read, args=(raw,), daemon=True).start()

    def _read(self, raw):
        try:
            with self.context.wrap_socket(raw, server_side=True) as conn:
                if conn.getpeercert():
                    with self.lock:
                        self.clients.append(conn.getpeercert())
                buffer = b""
                while True:
                    chunk = conn.recv(65536)
                    if not chunk:
                        break
                    buffer += chunk
                    while b" " in buffer:
                        length, _, rest = buffer.partition(b" ")
                        if len(rest) < int(length):
                            break
                        with self.lock:
                            self.records.append(rest[: int(length)].decode("utf-8"))
                        buffer = rest[int(length) :]
        except (OSError, ssl.SSLError, ValueError):
            pass

    def write(self, path: Path) -> Path:
        with self.lock:
            path.write_text("".join(record + "\n" for record in self.records), encoding="utf-8")
        return path


@pytest.fixture
def syslog_receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    receiver = SyslogReceiver()
    receiver.start()
    try:
        yield receiver
    finally:
        receiver.stop()
