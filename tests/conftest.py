"""Shared fixtures: owners and users, a signed-in client, and headless Chromium for e2e tests.

Also the collection rules of the suite: `make test` runs it on several pytest-xdist workers with
`--dist loadgroup`, so tests that drive a browser or start servers and processes are given an
`xdist_group` here (one worker runs each group, one test after the other); the `bench` self-check
is left out unless asked for (`-m bench`, or its file named on the command line).
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
from pathlib import Path

import pytest
from django.core.servers.basehttp import ThreadedWSGIServer

from tests import builders

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"

# Modules whose tests start servers or other processes beyond the worker itself (besides the
# live_server and e2e tests, which are found by fixture and marker).
PROCESS_MODULES = {"tests/roles/test_two_processes.py"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """Name the worker group a test must share, or None when it may run on any worker.

    "browser": the e2e tests, so that one Chromium runs at a time on the 2 cores (each worker
    would otherwise start its own). "servers": tests that serve the portal on a live server
    thread or start runserver processes and then call them over HTTP (scim2-tester, the IdP
    sequences, two processes); on one worker they never compete with each other for the cores.
    """
    if item.get_closest_marker("e2e"):
        return "browser"
    if "live_server" in getattr(item, "fixturenames", ()) or item.nodeid.split("::")[0] in (
        PROCESS_MODULES
    ):
        return "servers"
    return None


class LiveServer(ThreadedWSGIServer):
    """Django's live server, whose close also ends the client connections still open.

    A client that keeps its connection alive (Chromium, an httpx client) keeps a request thread
    waiting for its next request, and that thread keeps its database connection (CONN_MAX_AGE):
    at the end of the session pytest-django could not drop the test database ("is being accessed
    by other users"). Closing the server now shuts those sockets, and waits for each thread to
    finish, which closes its database connection (Django's close_request).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._open: dict[socket.socket, threading.Thread] = {}
        self._open_lock = threading.Lock()

    def process_request(self, request, client_address):
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address), daemon=True
        )
        with self._open_lock:
            self._open[request] = thread
        thread.start()

    def shutdown_request(self, request):
        with self._open_lock:
            self._open.pop(request, None)
        super().shutdown_request(request)

    def server_close(self):
        super().server_close()
        with self._open_lock:
            still_open = dict(self._open)
        for sock in still_open:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # the client closed it meanwhile
        for thread in still_open.values():
            thread.join(timeout=30)


def pytest_configure(config):
    from django.test.testcases import LiveServerThread

    LiveServerThread.server_class = LiveServer


# Before pytest-xdist reads the xdist_group marks, and before -m selects by marker.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items):
    bench_asked = "bench" in (config.option.markexpr or "") or any(
        "test_bench.py" in str(arg) for arg in config.args
    )
    kept, left_out = [], []
    for item in items:
        if item.get_closest_marker("bench") and not bench_asked:
            left_out.append(item)
            continue
        group = xdist_group_of(item)
        if group == "servers":
            item.add_marker(pytest.mark.servers)  # so that -m servers runs that group
        if group and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(group))
        kept.append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept


@pytest.fixture(autouse=True)
def _audit_guard():
    """Fail a test whose requests changed access data without writing an audit event."""
    from tests import audit_guard

    audit_guard.connect()
    audit_guard.violations.clear()
    yield
    found = list(audit_guard.violations)
    audit_guard.violations.clear()
    assert found == [], "Access data changed without evidence:\n" + "\n".join(found)


@pytest.fixture(autouse=True)
def _fresh_permission_caches():
    """Start every test with empty permission caches (shared and per-process) and no
    separation-of-duties refusal waiting to be recorded."""
    from django.core.cache import cache

    from roles import permissions, sod

    cache.clear()
    permissions.local_entries.clear()
    # A separation-of-duties refusal waits in the thread to be recorded after its request; a
    # test that raised one without a request must not hand it to the next test.
    sod.forget_refusals()


@pytest.fixture
def owner(db):
    return builders.make_owner("Acme Test")


@pytest.fixture
def admin_user(owner):
    """A user who holds every application area at its top level."""
    from roles import catalog

    return builders.make_user(
        owner,
        username="admin",
        grants={a.code: a.top for a in catalog.areas_for("application")},
        privilege_level=10,
        expert_level=3,
    )


@pytest.fixture
def signed_in(client):
    """Return a function that signs a user in on the test client (force_login) and the client."""

    def sign_in(user):
        client.force_login(user, backend="accounts.backends.PortalBackend")
        return client

    return sign_in


@pytest.fixture
def screenshot_dir():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# Browser tests: Debian's Chromium through Playwright (never a downloaded browser).
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session", autouse=True)
def _allow_async_unsafe():
    # Playwright runs an event loop in the test thread; Django's ORM calls from the test are safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
