"""Faults against real services: PostgreSQL restarted under load, Redis away, oversized, flooding
and slow clients, and two servers on one database and one Redis.

Each test starts its own gunicorn servers of the portal (production settings) on loopback ports,
on the throw-away cluster of tests/ops/conftest.py; every loop is bounded in count and time.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time

import psycopg
import pytest
import requests

from tests.ops.conftest import METRICS_TOKEN, free_port, manage, portal_environment, sign_in

pytestmark = [pytest.mark.ops, pytest.mark.xdist_group("ops")]

GENERIC_FAILURE = "Those sign-in details did not work"
UNAVAILABLE = "Briefly unavailable"
DETAILS = {"Authorization": f"Bearer {METRICS_TOKEN}"}


def _events_by_request(cluster, prefix: str) -> dict[str, int]:
    with psycopg.connect(cluster.url().replace("postgres://", "postgresql://")) as connection:
        rows = connection.execute(
            "SELECT request_id, count(*) FROM audit_auditevent WHERE request_id LIKE %s "
            "GROUP BY request_id",
            [prefix + "%"],
        ).fetchall()
    return dict(rows)


def test_postgresql_restart_while_requests_flow(cluster, gunicorn, seeded, portal_database):
    """Requests during the outage get 503 in their own format; the portal recovers by itself;
    every refused sign-in answered has exactly one audit event, none has two, the chain holds."""
    server = gunicorn("restart")
    base, tag = server.url, seeded["tag"]
    signed_in = sign_in(base, f"tess-{tag}", seeded["password"])
    assert signed_in.status_code == 302
    browser = signed_in.session
    visitor = requests.Session()
    visitor.get(base + "/sign-in/", timeout=10)
    csrf = visitor.cookies["csrftoken"]
    answered: list[tuple[str, int, str]] = []

    def round_trip(n: int) -> tuple[int, int]:
        request_id = f"restart-{tag}-{n:04d}"
        refused = visitor.post(
            base + "/sign-in/",
            data={"login": f"ghost-{n}", "password": "wrong", "csrfmiddlewaretoken": csrf},
            headers={"X-Request-ID": request_id, "Referer": base + "/sign-in/"},
            timeout=15,
        )
        answered.append((request_id, refused.status_code, refused.text))
        page = browser.get(base + "/users/", timeout=15, allow_redirects=False)
        for response in (refused, page):
            if response.status_code == 503:
                assert UNAVAILABLE in response.text
                assert response.headers["Retry-After"] == "5"
            assert "Traceback" not in response.text
        return refused.status_code, page.status_code

    n = 0
    for _ in range(8):
        assert round_trip(n := n + 1) == (400, 200)
    cluster.stop("fast")
    try:
        for _ in range(6):
            assert round_trip(n := n + 1) == (503, 503)
        api = requests.get(
            base + "/api/v1/me", headers={"Authorization": f"Bearer {seeded['token']}"}, timeout=15
        )
        assert api.status_code == 503
        assert api.json() == {
            "error": {"code": "unavailable", "message": api.json()["error"]["message"]}
        }
        scim = requests.get(
            base + "/scim/v2/Users",
            headers={"Authorization": "Bearer scim_abcd1234_" + "s" * 43},
            timeout=15,
        )
        assert scim.status_code == 503
        assert scim.headers["Content-Type"] == "application/scim+json"
        assert scim.json()["status"] == "503"
        assert requests.get(base + "/readyz", timeout=15).status_code == 503
        assert requests.get(base + "/healthz", timeout=15).status_code == 200
    finally:
        cluster.start()
    deadline = time.monotonic() + 30
    while round_trip(n := n + 1) != (400, 200):
        assert time.monotonic() < deadline, "the portal did not recover within 30 s"
    for _ in range(8):
        assert round_trip(n := n + 1) == (400, 200)
    assert requests.get(base + "/readyz", timeout=15).json() == {"status": "ok"}

    events = _events_by_request(cluster, f"restart-{tag}-")
    assert all(count == 1 for count in events.values()), "an event was written twice"
    for request_id, status, text in answered:
        if status == 400:
            assert GENERIC_FAILURE in text
            assert events.get(request_id) == 1, f"{request_id} was refused but not recorded"
        else:
            assert status == 503
    assert sum(1 for _, status, _ in answered if status == 503) >= 6
    verified = manage(portal_environment(cluster.url(), portal_database), "audit_verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_redis_unreachable_falls_back_with_one_warning(gunicorn, seeded):
    closed = free_port()  # nothing listens there
    server = gunicorn("noredis", CACHE_URL=f"redis://127.0.0.1:{closed}/0", GUNICORN_WORKERS="1")
    browser = sign_in(server.url, f"tess-{seeded['tag']}", seeded["password"]).session
    started = time.monotonic()
    for _ in range(30):
        assert browser.get(server.url + "/users/", timeout=15).status_code == 200
    assert time.monotonic() - started < 30
    ready = requests.get(server.url + "/readyz", headers=DETAILS, timeout=15).json()
    assert ready["status"] == "degraded"
    assert "Redis unreachable" in ready["checks"]["cache"]["problem"]
    log = server.log()
    assert log.count("Redis cache unreachable") == 1, log[-3000:]


def _status_line(sock: socket.socket, timeout: float = 10) -> str:
    sock.settimeout(timeout)
    received = b""
    while b"\r\n" not in received:
        chunk = sock.recv(4096)
        if not chunk:
            break
        received += chunk
    return received.split(b"\r\n", 1)[0].decode("latin-1")


def _raw(port: int, head: str, body: bytes = b"") -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head.encode("latin-1") + body)
        return _status_line(sock)


def test_oversized_flooding_and_slow_requests_are_refused(gunicorn):
    server = gunicorn("limits")
    port = server.port
    # A 10 MB body announced with a valid CSRF token: refused for its size before it is read
    # (only its first 64 KB are sent); SCIM refuses it unread too.
    csrf = requests.get(server.url + "/sign-in/", timeout=10).cookies["csrftoken"]
    started = time.monotonic()
    head = (
        "POST /sign-in/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Cookie: csrftoken={csrf}\r\nX-CSRFToken: {csrf}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    assert _raw(port, head, b"x" * 65536).split()[1] == "400"
    head = (
        "POST /scim/v2/Users HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: application/scim+json\r\n"
        f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    )
    assert _raw(port, head, b"x" * 65536).split()[1] in {"401", "413"}  # no token, or too big
    assert time.monotonic() - started < 5
    # Header flood, one huge header, a huge request line: gunicorn refuses them itself.
    flood = "".join(f"X-Flood-{n}: {n}\r\n" for n in range(200))
    assert _raw(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{flood}\r\n").split()[1] in {
        "400",
        "431",
    }
    huge = "X-Huge: " + "h" * 10000 + "\r\n"
    assert _raw(port, f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n{huge}\r\n").split()[1] in {
        "400",
        "431",
    }
    line = "/" + "a" * 5000
    assert _raw(port, f"GET {line} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").split()[1] in {
        "400",
        "414",
    }

    # Slow clients: one that trickles a request a byte at a time (it holds one thread of a
    # worker, never the worker), two that send nothing (handed back to the poller after 5 s,
    # closed after the keep-alive). Pages are served meanwhile.
    stop = threading.Event()
    silent = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(2)]

    def trickle():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for byte in b"GET /sign-in/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 200:
                if stop.is_set():
                    return
                try:
                    sock.send(bytes([byte]))
                except OSError:
                    return  # the server gave up on us: fine
                time.sleep(0.2)

    tricklers = [threading.Thread(target=trickle, daemon=True)]
    for thread in tricklers:
        thread.start()
    try:
        time.sleep(0.5)
        slowest = 0.0
        for _ in range(20):
            started = time.monotonic()
            assert requests.get(server.url + "/sign-in/", timeout=10).status_code == 200
            slowest = max(slowest, time.monotonic() - started)
        # A page stuck behind a slow client would wait 5 s (a silent one) or for ever.
        assert slowest < 3.0, f"a page took {slowest:.1f} s beside slow clients"
        for sock in silent:
            sock.settimeout(20)
            started = time.monotonic()
            assert sock.recv(1) == b"", "the server answered a request never sent"
            assert time.monotonic() - started < 20
    finally:
        stop.set()
        for sock in silent:
            sock.close()
        for thread in tricklers:
            thread.join(timeout=15)
    assert requests.get(server.url + "/healthz", timeout=5).status_code == 200


def _redis_answers(port: int = 6379) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def redis_url():
    """The Redis on 127.0.0.1:6379 when one answers, else a throw-away one started here."""
    if _redis_answers():
        yield "redis://127.0.0.1:6379/11"
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("Redis is needed: a server on 127.0.0.1:6379, or redis-server installed")
    port = free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(50):
            if _redis_answers(port):
                break
            time.sleep(0.1)
        yield f"redis://127.0.0.1:{port}/11"
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_two_servers_share_the_database_and_redis(gunicorn, seeded, redis_url):
    """A permission change, a deactivation, an ended session and a lockout made through one
    server are in force on the other at its next request."""
    shared = {"CACHE_URL": redis_url}
    one, other = gunicorn("one", **shared), gunicorn("other", **shared)
    tag, password, people = seeded["tag"], seeded["password"], seeded["people"]
    api = {"Authorization": f"Bearer {seeded['token']}"}

    tess = sign_in(one.url, f"tess-{tag}", password).session
    for server in (one, other, one, other):
        assert (
            tess.get(server.url + "/users/", timeout=15, allow_redirects=False).status_code == 200
        )
    read = requests.get(f"{other.url}/api/v1/users/{people['tess']}", headers=api, timeout=15)
    changed = requests.patch(
        f"{one.url}/api/v1/users/{people['tess']}",
        json={"role": seeded["role_nothing"], "reason": "Scale-out test"},
        headers={**api, "If-Match": read.headers["ETag"]},
        timeout=15,
    )
    assert changed.status_code == 200, changed.text
    assert tess.get(other.url + "/users/", timeout=15, allow_redirects=False).status_code == 403

    dana = sign_in(other.url, f"dana-{tag}", password).session
    assert dana.get(one.url + "/", timeout=15, allow_redirects=False).status_code == 200
    gone = requests.post(
        f"{one.url}/api/v1/users/{people['dana']}/deactivate",
        json={"reason": "Scale-out test"},
        headers=api,
        timeout=15,
    )
    assert gone.status_code == 200, gone.text
    refused = dana.get(other.url + "/", timeout=15, allow_redirects=False)
    assert refused.status_code == 302 and "/sign-in/" in refused.headers["Location"]

    first = sign_in(one.url, f"lou-{tag}", password).session
    second = sign_in(other.url, f"lou-{tag}", password).session
    assert second.get(one.url + "/", timeout=15, allow_redirects=False).status_code == 200
    first.get(one.url + "/me/sessions/", timeout=15)
    ended = first.post(
        one.url + "/me/sessions/",
        data={"csrfmiddlewaretoken": first.cookies["csrftoken"]},
        headers={"Referer": one.url + "/me/sessions/"},
        timeout=15,
        allow_redirects=False,
    )
    assert ended.status_code == 302
    refused = second.get(other.url + "/", timeout=15, allow_redirects=False)
    assert refused.status_code == 302 and "/sign-in/" in refused.headers["Location"]
    assert first.get(other.url + "/", timeout=15, allow_redirects=False).status_code == 200

    for _ in range(3):  # the owner's policy locks after 3 failures
        assert sign_in(one.url, f"sam-{tag}", "not the password").status_code == 400
    locked = sign_in(other.url, f"sam-{tag}", password)
    assert locked.status_code == 400
    assert GENERIC_FAILURE in locked.text
