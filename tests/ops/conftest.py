"""Real services for the operations tests: a throw-away PostgreSQL cluster this test session
starts itself (never the server on 127.0.0.1:5432, which other suites use), a database migrated
once, collected static files, and gunicorn servers of the portal on loopback ports.

Everything here is bounded: every wait has a deadline, every server is stopped at teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "ops-tests-" + "k" * 40
FIELD_KEY = "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU="
METRICS_TOKEN = "ops-tests-metrics-token-" + "t" * 16
DB_NAME = "billing_access_ops"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until(predicate, *, timeout: float, interval: float = 0.1, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"Timed out after {timeout} s waiting for {what}.")


@dataclass
class Cluster:
    """A PostgreSQL cluster in a temporary folder, run as the postgres user when we are root."""

    bin_dir: Path
    folder: Path
    port: int
    as_owner: list[str] = field(default_factory=list)

    def _pg_ctl(self, *args: str, check: bool = True) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bin_dir / "pg_ctl"), "-D", str(self.folder / "data"), *args],
            check=check,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        options = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.folder} -c fsync=off"
        self._pg_ctl("-o", options, "-l", str(self.folder / "server.log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("-m", mode, "-w", "stop", check=False)

    def url(self, name: str = DB_NAME, **query: str) -> str:
        tail = "&".join(f"{key}={value}" for key, value in query.items())
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}" + (f"?{tail}" if tail else "")


@pytest.fixture(scope="session")
def cluster():
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: p.parent)
    if not bins:
        pytest.fail("PostgreSQL server binaries are needed: apt-get install postgresql")
    folder = Path(tempfile.mkdtemp(prefix="billing-access-ops-pg-"))
    as_owner: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        as_owner = ["runuser", "-u", "postgres", "--"]
    found = Cluster(bins[-1].parent, folder, free_port(), as_owner)
    subprocess.run(
        [*as_owner, str(found.bin_dir / "initdb"), "-D", str(folder / "data"), "-U", "postgres"]
        + ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    found.start()
    try:
        yield found
    finally:
        found.stop("immediate")
        shutil.rmtree(folder, ignore_errors=True)


def portal_environment(database_url: str, var_dir: Path, **extra: str) -> dict[str, str]:
    """Production settings (DEBUG off) for a portal process on loopback."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PYTHONPATH")
    environment = {key: value for key, value in os.environ.items() if key in keep}
    environment.update(
        DJANGO_SETTINGS_MODULE="billing_access.settings",
        SECRET_KEY=SECRET_KEY,
        FIELD_ENCRYPTION_KEY=FIELD_KEY,
        DATABASE_URL=database_url,
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        SECURE_COOKIES="false",
        EMAIL_URL="memory:",
        VAR_DIR=str(var_dir),
        METRICS_TOKEN=METRICS_TOKEN,
        TRUSTED_PROXY_COUNT="1",  # the tests name each request (X-Request-ID)
        LOG_LEVEL="WARNING",
    )
    environment.update(extra)
    return environment


def manage(environment: dict[str, str], *args: str, timeout: float = 300):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="session")
def portal_database(cluster, tmp_path_factory):
    """The portal's database in the cluster, migrated once, with static files collected."""
    var_dir = tmp_path_factory.mktemp("ops-var")
    subprocess.run(
        [*cluster.as_owner, str(cluster.bin_dir / "createdb"), "-h", "127.0.0.1"]
        + ["-p", str(cluster.port), "-U", "postgres", DB_NAME],
        check=True,
        capture_output=True,
        timeout=60,
    )
    environment = portal_environment(cluster.url(), var_dir)
    for command in (("migrate", "--no-input", "-v0"), ("collectstatic", "--no-input", "-v0")):
        result = manage(environment, *command)
        assert result.returncode == 0, result.stdout + result.stderr
    return var_dir


SEED = """
import json
from django.db import transaction
from accounts.models import Owner
from security.models import PasswordPolicy
from tests import builders
with transaction.atomic():
    owner = Owner.objects.create(name="Ops Test {tag}", slug="ops-{tag}".lower()[:50])
    PasswordPolicy.objects.create(owner=owner, lockout_threshold=3)
    readers = builders.make_role_group(owner, grants={{"users": "read"}})
    reader = builders.make_role(owner, groups=[readers])
    nothing = builders.make_role(owner, groups=[])
    people = {{
        name: builders.make_user(owner, username=f"{{name}}-{tag}", role=reader).pk
        for name in ("tess", "dana", "lou", "sam")
    }}
    api = builders.make_api_user(owner, api_grants={{"api_users": "write"}}, username="api-{tag}")
    _, token = builders.make_token(api)
print(json.dumps({{"people": people, "token": token, "role_nothing": nothing.pk,
                  "password": builders.PASSWORD}}))
"""


@pytest.fixture
def seeded(cluster, portal_database, request):
    """People of a fresh owner: users who read /users/, an API token that may change users."""
    import json

    tag = re.sub(r"\W", "", request.node.name)[-20:] + str(free_port())
    result = manage(
        portal_environment(cluster.url(), portal_database), "shell", "-c", SEED.format(tag=tag)
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout.strip().splitlines()[-1])
    data["tag"] = tag
    return data


class Gunicorn:
    """One gunicorn server of the portal (gunicorn.conf.py) on a loopback port."""

    def __init__(self, environment: dict[str, str], log_dir: Path, name: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_dir / f"gunicorn-{name}-{self.port}.log"
        environment = {
            "GUNICORN_BIND": f"127.0.0.1:{self.port}",
            "GUNICORN_WORKERS": "2",
            "GUNICORN_THREADS": "4",
            "PROMETHEUS_MULTIPROC_DIR": str(log_dir / f"metrics-{name}-{self.port}"),
            **environment,
        }
        self._log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "billing_access.wsgi"],
            cwd=ROOT,
            env=environment,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_until(self._answers, timeout=60, interval=0.2, what=f"gunicorn on {self.port}")

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError("gunicorn exited:\n" + self.log_path.read_text()[-3000:])
        try:
            return requests.get(self.url + "/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        self._log.close()


@pytest.fixture
def gunicorn(cluster, portal_database, tmp_path):
    """Start portal servers: gunicorn(**environment) -> Gunicorn; all stopped at teardown."""
    started: list[Gunicorn] = []

    def start(name: str = "portal", **extra: str) -> Gunicorn:
        environment = portal_environment(cluster.url(), portal_database, **extra)
        server = Gunicorn(environment, tmp_path, name)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def sign_in(base_url: str, login: str, password: str, **headers: str) -> requests.Response:
    """A fresh browser: read the sign-in page (CSRF cookie), post the form; return the answer
    with the session on `response.session`."""
    session = requests.Session()
    session.get(base_url + "/sign-in/", timeout=10)
    response = session.post(
        base_url + "/sign-in/",
        data={
            "login": login,
            "password": password,
            "csrfmiddlewaretoken": session.cookies.get("csrftoken", ""),
        },
        headers={"Referer": base_url + "/sign-in/", **headers},
        allow_redirects=False,
        timeout=10,
    )
    response.session = session  # type: ignore[attr-defined]
    return response
