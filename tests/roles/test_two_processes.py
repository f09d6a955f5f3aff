"""A change made through one server process is in force on the next request served by another.

Two real `manage.py runserver --noreload` processes share the test database; each keeps its own
in-memory permission cache. A person signs in with the real form on process A, an administrator
changes the matrix on process B, and A's very next page already follows the new matrix.
"""

import html
import http.cookiejar
import os
import queue
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from roles import catalog
from tests.builders import PASSWORD, make_role, make_role_group, make_user

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.django_db(transaction=True, serialized_rollback=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def database_url() -> str:
    s = connection.settings_dict
    auth = s["USER"] + (f":{s['PASSWORD']}" if s["PASSWORD"] else "")
    return f"postgres://{auth}@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"


def start_server() -> subprocess.Popen:
    """Start a server on a free port; try again on another port if that one was taken meanwhile."""
    failures = []
    for _ in range(3):
        process, output = _start_on(free_port())
        if process is not None:
            return process
        failures.append(output)
    raise RuntimeError("runserver did not start:\n" + "\n---\n".join(failures))


def _start_on(port: int) -> tuple[subprocess.Popen | None, str]:
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "PYTHONUNBUFFERED": "1",
    }
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # Wait on the server's own output until it says it listens (bounded, no polling sleep). A
    # thread reads the pipe: select() on a buffered pipe misses lines already in the buffer.
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + 120
    seen = []
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            seen.append("(no output before the deadline)\n")
            break
        if not line:
            seen.append(f"(exited with {process.wait(timeout=30)})\n")
            break
        seen.append(line)
        if "Quit the server with" in line:
            return process, ""
    process.kill()
    process.wait(timeout=30)
    process.stdout.close()
    return None, f"port {port}:\n" + "".join(seen)


def _pump(stream, lines: queue.Queue) -> None:
    """Move the server's output into `lines` (also keeps the pipe from filling up)."""
    for line in iter(stream.readline, ""):
        lines.put(line)
    lines.put("")


class Browser:
    """A cookie-keeping HTTP client for one person on one server process."""

    def __init__(self, port: int):
        self.base = f"http://127.0.0.1:{port}"
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: dict) -> tuple[int, str]:
        body = urllib.parse.urlencode(data, doseq=True).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def _open(self, request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def csrf(self, page: str) -> str:
        return html.unescape(re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)[1])

    def sign_in(self, login: str) -> None:
        status, page = self.get("/sign-in/")
        assert status == 200
        status, page = self.post(
            "/sign-in/",
            {"csrfmiddlewaretoken": self.csrf(page), "login": login, "password": PASSWORD},
        )
        assert status == 200 and "Welcome" in page, page[:500]


@pytest.fixture
def servers(transactional_db):
    processes = [start_server(), start_server()]
    yield [int(p.args[-1].rsplit(":", 1)[1]) for p in processes]
    for process in processes:
        process.terminate()
        process.wait(timeout=30)
        process.stdout.close()


def test_matrix_change_on_b_is_in_force_on_a_next_request(servers):
    from accounts.models import Owner

    owner = Owner.objects.create(name="Two Processes", slug="two-processes")
    finance = make_role_group(owner, "Finance", {"invoices": "full", "payments": "read"})
    make_user(owner, username="clerk", role=make_role(owner, "Finance clerk", groups=[finance]))
    make_user(
        owner,
        username="boss",
        grants={a.code: a.top for a in catalog.areas_for("application")},
        privilege_level=10,
    )
    port_a, port_b = servers
    clerk, admin = Browser(port_a), Browser(port_b)
    clerk.sign_in("clerk")
    admin.sign_in("boss")

    # Process A resolves (and caches) the clerk's permissions: no role-group screen.
    assert clerk.get("/access/role-groups/")[0] == 403
    status, page = clerk.get("/me/access/")
    assert status == 200 and "Invoices" in page and "User Groups" not in page

    # Process B: the administrator grants User Groups read through the Finance matrix.
    matrix = f"/access/role-groups/{finance.pk}/"
    status, page = admin.get(matrix)
    assert status == 200
    status, page = admin.post(
        matrix,
        {
            "csrfmiddlewaretoken": admin.csrf(page),
            "row_version": 1,
            "cell-settings_user_groups": "read",
            "cell-invoices": "none",
            "action": "save",
        },
    )
    assert status == 200 and "Saved: 2 cells changed" in page

    # Process A's next request follows the new matrix, although its cache held the old one.
    assert clerk.get("/access/role-groups/")[0] == 200
    status, page = clerk.get("/me/access/")
    assert "User Groups" in page and "Invoices" not in page
