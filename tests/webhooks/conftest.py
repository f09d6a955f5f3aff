"""A real webhook receiver: a threaded HTTP server on 127.0.0.1 that checks every signature."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from roles import catalog
from tests.builders import make_user
from webhooks import services, signing
from webhooks.choices import EventType

CHANGE_TYPES = [t for t in EventType.values if t != EventType.AUDIT_RECORDED]


class Receiver:
    """Records each POST (headers, body, whether its signature verified) and answers `status`.

    `status` may be a list, consumed one answer per request (the last one repeats); `hang`
    makes the next requests wait that many seconds before answering.
    """

    def __init__(self):
        self.secret = ""
        self.received: list[dict] = []
        self.status: int | list[int] = 200
        self.hang = 0.0
        self.arrived = threading.Event()
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                headers = dict(self.headers.items())
                with receiver.lock:
                    # Tests move the sender's clock by days, so the stamp's age is not judged.
                    # `secret` may be a list: the secrets a receiver accepts while one rotates.
                    held = (
                        receiver.secret if isinstance(receiver.secret, list) else [receiver.secret]
                    )
                    verified_by = [
                        n
                        for n, secret in enumerate(held)
                        if signing.verify(
                            secret, headers, body, now=int(time.time()), tolerance=10**7
                        )
                    ]
                    verified = bool(verified_by)
                    receiver.received.append(
                        {
                            "id": headers.get("webhook-id"),
                            "headers": headers,
                            "body": body,
                            "json": json.loads(body),
                            "verified": verified,
                            "verified_by": verified_by,
                            "at": time.monotonic(),
                        }
                    )
                    status = receiver.status
                    if isinstance(status, list):
                        status = status.pop(0) if len(status) > 1 else status[0]
                    hang = receiver.hang
                receiver.arrived.set()
                if hang:
                    time.sleep(hang)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "2")
                    self.end_headers()
                    self.wfile.write(b"ok")
                except OSError:
                    pass  # the sender gave up (timeout) or died

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def types(self):
        return [r["json"]["type"] for r in self.received]

    def of_type(self, event_type):
        return [r for r in self.received if r["json"]["type"] == event_type]


@pytest.fixture
def receiver(settings):
    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True  # the receiver is on loopback
    server = Receiver()
    server.thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()


@pytest.fixture
def integrator(owner):
    """An administrator who looks after integrations (Parameters full) and users."""
    return make_user(
        owner,
        username="integrator",
        email="integrator@example.test",
        grants={
            catalog.PARAMETERS: catalog.FULL,
            catalog.USERS: catalog.FULL,
            catalog.DP_ACCESS: catalog.FULL,
            "invoices": catalog.FULL,
        },
        privilege_level=9,
    )


@pytest.fixture
def endpoint(receiver, integrator):
    made, secret = services.create_endpoint(
        reason="Receives our change events",
        actor=integrator,
        name="Billing core",
        url=receiver.url,
        event_types=CHANGE_TYPES,
    )
    receiver.secret = secret
    return made
