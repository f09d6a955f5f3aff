"""`make bench`: seed a dedicated PostgreSQL database, measure, print one table, write JSON.

Environment: BENCH_SIZES (default "10000,100000" users per owner), BENCH_EVENTS (default
5000000 audit events, 0 to skip), BENCH_REPEAT (requests per screen, default 40),
BENCH_HTTP_SECONDS (default 3) and BENCH_HTTP_REQUESTS (default 20000): each load run stops at
whichever comes first; BENCH_HTTP_ROUNDS (default 5): every target is run once per round, each
run right after a run of the floor it is compared with, so that both share the machine's
moods; the figures are the medians of the rounds. BENCH_SKIP_HTTP=1 skips the gunicorn runs.
BENCH_ONLY=api measures only the JSON API and AuthZEN over HTTP, each beside the floor (no
screens, middleware, separation of duties, webhooks, home page or users list): the quick loop
while working on the API's request path.
BENCH_OUT (default var/bench) is where the JSON report and wrk's scripts go.
BENCH_ONLY (default: all) narrows the run to some sections, comma-separated among "screens",
"middleware", "sod", "elevations", "webhooks", "http" and "api" (seeding always runs):
`BENCH_ONLY=sod` measures separation of duties alone.

Separation of duties (tests/bench/sod.py): 50 rules per owner, seeded before the screens; one
role-group matrix change checked against them, and the violations report for the whole owner.

Just-in-time access (tests/bench/elevations.py): queries per request, counted, for a user with
no eligibility, one eligible with no elevation in force, and one with an elevation in force.

Screens are measured in-process by calling the WSGI application directly, as gunicorn does,
with a signed-in session cookie; the floor is the same call through a handler that has only
Django's session and authentication middleware, in front of a bare view.
"""

from __future__ import annotations

import datetime
import io
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.bench.settings")


def ensure_database():
    """Create the benchmark database named in DATABASE_URL when it does not exist yet."""
    from urllib.parse import urlparse

    import psycopg

    url = urlparse(os.environ.get("DATABASE_URL", ""))
    if url.scheme not in {"postgres", "postgresql"}:
        sys.exit("make bench needs PostgreSQL: set DATABASE_URL or run a server on 127.0.0.1:5432.")
    name = url.path.lstrip("/")
    admin_url = url._replace(path="/postgres").geturl()
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


ensure_database()

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.sessions.backends.db import SessionStore  # noqa: E402
from django.core.cache import cache  # noqa: E402
from django.core.handlers.wsgi import WSGIHandler  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import RequestFactory, override_settings  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402
from django.utils.crypto import get_random_string  # noqa: E402

from portal.access import requires  # noqa: E402
from roles import catalog, permissions  # noqa: E402
from roles.middleware import PermissionMiddleware  # noqa: E402
from tests.bench import api as api_bench  # noqa: E402
from tests.bench import elevations as elevation_bench  # noqa: E402
from tests.bench import seed  # noqa: E402
from tests.bench import sod as sod_bench  # noqa: E402
from tests.bench import webhooks as webhook_bench  # noqa: E402
from tests.bench.api import api_targets  # noqa: E402
from tests.bench.counting import QueryTimer  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = Path(os.environ.get("BENCH_OUT") or ROOT / "var" / "bench")
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000").split(",") if s]
EVENTS = int(os.environ.get("BENCH_EVENTS", "5000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "40"))
HTTP_SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "3"))
HTTP_REQUESTS = int(os.environ.get("BENCH_HTTP_REQUESTS", "20000"))
HTTP_ROUNDS = int(os.environ.get("BENCH_HTTP_ROUNDS", "5"))
SECTIONS = ("screens", "middleware", "sod", "elevations", "webhooks", "http", "api")
ONLY = {s.strip().lower() for s in os.environ.get("BENCH_ONLY", "").split(",") if s.strip()}
if ONLY - set(SECTIONS):
    sys.exit(f"BENCH_ONLY names unknown sections: {', '.join(sorted(ONLY - set(SECTIONS)))}.")


def runs(section: str) -> bool:
    """Say whether BENCH_ONLY (when set) includes `section`."""
    return not ONLY or section in ONLY


WRK_THREADS, WRK_CONNECTIONS = 2, 8
FLOOR = "floor: bare signed-in view"
# A day inside the seeded events (spread over the last 90 days).
ONE_DAY = (datetime.date.today() - datetime.timedelta(days=30)).isoformat()
FLOOR_MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
]


def machine_pace() -> float:
    """Return the milliseconds a fixed piece of pure Python takes here (best of 5; lower is
    faster). Taken at the start and at the end of a run, it shows how fast the machine was that
    day, and whether its pace changed during the run (shared virtual machines drift)."""

    def work():
        total = 0
        for i in range(300_000):
            total += i % 7
        return total

    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return round(best * 1000, 1)


def pct(values, q):
    values = sorted(values)
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


class InProcess:
    """Call a WSGI application directly, as gunicorn would, with a signed-in session cookie."""

    def __init__(self, application, cookie: str):
        self.application = application
        self.cookie = cookie

    def get(self, path: str) -> tuple[int, int]:
        """Request `path`; return the status code and the size of the body (streams drained)."""
        path_info, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": "GET",
            "PATH_INFO": path_info,
            "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1",
            "SERVER_PORT": "8000",
            "SERVER_PROTOCOL": "HTTP/1.1",
            "REMOTE_ADDR": "127.0.0.1",
            "HTTP_HOST": "127.0.0.1:8000",
            "HTTP_COOKIE": self.cookie,
            "HTTP_USER_AGENT": "billing-access-bench",
            "wsgi.url_scheme": "http",
            "wsgi.input": io.BytesIO(b""),
            "wsgi.errors": sys.stderr,
        }
        status = []
        result = self.application(environ, lambda line, headers, *_: status.append(line))
        try:
            size = sum(len(chunk) for chunk in result)
        finally:
            if hasattr(result, "close"):
                result.close()
        return int(status[0].split()[0]), size


class FloorHandler(WSGIHandler):
    """Django's WSGI handler with only the session and authentication middleware, in front of
    the floor's own URLconf (one pattern), as the floor's gunicorn serves it."""

    def load_middleware(self, is_async=False):
        with override_settings(MIDDLEWARE=FLOOR_MIDDLEWARE):
            super().load_middleware(is_async)

    def get_response(self, request):
        request.urlconf = "tests.bench.floor_urls"
        return super().get_response(request)


def measure_page(server: InProcess, path, repeat=REPEAT, before_each=None):
    """Request `path` repeatedly in-process; return latency percentiles, queries, db/python split.
    `before_each` (untimed) runs before every request."""
    for _ in range(3):
        if before_each:
            before_each()
        status, _ = server.get(path)
        if status != 200:
            return {"error": f"HTTP {status}"}
    totals, dbs, queries = [], [], set()
    for _ in range(repeat):
        if before_each:
            before_each()
        timer = QueryTimer()
        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            server.get(path)
            elapsed = time.perf_counter() - started
        totals.append(elapsed * 1000)
        dbs.append(timer.seconds * 1000)
        queries.add(timer.count)
    return {
        "p50_ms": round(pct(totals, 50), 2),
        "p95_ms": round(pct(totals, 95), 2),
        "db_ms": round(statistics.median(dbs), 2),
        "python_ms": round(statistics.median(totals) - statistics.median(dbs), 2),
        # The usual count; a page that writes now and then (a session's last-seen time once a
        # minute) shows its extra queries in queries_max.
        "queries": min(queries),
        "queries_max": max(queries),
    }


def signed_in_cookie(user) -> str:
    """Return a session cookie signed in as `user`, as the sign-in page would leave it."""
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "accounts.backends.PortalBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    # A browser that has seen a page before also sends back its CSRF cookie.
    csrf = get_random_string(32)
    return (
        f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={csrf}"
    )


def url(name, *args, query=""):
    try:
        path = reverse(name, args=args)
    except NoReverseMatch:
        return None
    return path + (f"?{query}" if query else "")


def screens_for(owner, admin, sample_user):
    """Return (label, path, compare-with label) for every screen that exists in this build."""
    last_admin_page = (seed.User.objects.count() + 99) // 100
    items = [
        ("empty page, portal middleware", "/bench-empty/", None),
        ("home", "/", None),
        ("my access", url("roles:my_access"), None),
        ("users list, first page", url("accounts:user_list"), "admin: user list, first page"),
        (
            "users list, last page",
            url("accounts:user_list", query="page=last"),
            "admin: user list, last page",
        ),
        ("users list, search", url("accounts:user_list", query="q=smith-042"), "admin: search"),
        ("user record", url("accounts:user_detail", sample_user.pk), None),
        ("role group matrix", url("roles:rolegroup_edit", seed.first_group(owner)), None),
        ("who has access", url("roles:who_has_access", query="area=invoices&level=full"), None),
        ("effective permissions", url("roles:user_permissions", sample_user.pk), None),
        # The activity filters' own names: `q` (a person's name or login, searched as the users
        # list searches), `person` (one login exactly: the user record's link), an action of
        # the tab's category.
        ("activity, person search", url("audit:activity", query=f"q={sample_user.username}"), None),
        (
            "activity, person search, first time",
            url("audit:activity", query=f"q={sample_user.username}"),
            None,
        ),
        (
            "activity, one person",
            url("audit:activity", query=f"person={sample_user.username}"),
            None,
        ),
        (
            "activity, by type",
            url("audit:activity_tab", "failed", query="action=sign_in_failed"),
            None,
        ),
        (
            "activity, one day",
            url("audit:activity", query=f"since={ONE_DAY}&until={ONE_DAY}"),
            None,
        ),
        ("admin: user list, first page", "/bench-admin/accounts/user/", None),
        (
            "admin: user list, last page",
            f"/bench-admin/accounts/user/?p={last_admin_page}",
            None,
        ),
        ("admin: search", "/bench-admin/accounts/user/?q=smith-042", None),
    ]
    return [(label, path, compare) for label, path, compare in items if path]


def measure_middleware(owner):
    """Time the permission middleware alone (attach, then check a view's requirement) per request
    for 1, 10 and 50 role groups, on a cache hit and on a miss."""
    factory = RequestFactory()
    middleware = PermissionMiddleware(lambda request: None)
    view = requires("invoices", catalog.READ)(lambda request: None)

    def one_request(user):
        request = factory.get("/")
        request.user = user
        started = time.perf_counter()
        middleware(request)
        refused = middleware.process_view(request, view, (), {})
        elapsed = (time.perf_counter() - started) * 1000
        assert refused is None, "the benchmark users hold invoices read"
        return elapsed

    rows = []
    for count in (1, 10, 50):
        user = seed.user_with_groups(owner, count)
        cache.clear()
        permissions.local_entries.clear()
        one_request(user)
        hits = [one_request(user) for _ in range(2000)]
        misses = []
        for _ in range(200):
            cache.clear()
            permissions.local_entries.clear()
            misses.append(one_request(user))
        rows.append(
            {
                "groups": count,
                "hit_p50_ms": round(pct(hits, 50), 4),
                "hit_p95_ms": round(pct(hits, 95), 4),
                "miss_p50_ms": round(pct(misses, 50), 3),
                "miss_p95_ms": round(pct(misses, 95), 3),
            }
        )
    return rows


def home_page_queries(user) -> int:
    """Return the fewest queries of the home page for `user` signed in, after warming."""
    server = InProcess(WSGIHandler(), signed_in_cookie(user))
    for _ in range(3):  # the permission cache and the menu's answers
        status, _ = server.get("/")
        if status != 200:
            raise RuntimeError(f"home page answered HTTP {status} for {user.username}")
    counts = []
    for _ in range(5):
        timer = QueryTimer()
        with connection.execute_wrapper(timer):
            server.get("/")
        counts.append(timer.count)
    return min(counts)


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class Server:
    url: str
    pid: int


@contextmanager
def gunicorn(settings_module, port, **environ):
    """Serve the portal (or the floor) with gunicorn, 2 workers; yield its address and PID."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module, **environ}
    log = OUT_DIR / f"gunicorn-{settings_module.rsplit('.', 1)[-1]}.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gunicorn",
                "billing_access.wsgi",
                # Not the checkout's gunicorn.conf.py (threads, access log, worker recycling):
                # the figures stay those of plain sync workers, as measured before it existed.
                "--config",
                os.devnull,
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                    break
                except OSError:
                    time.sleep(0.2)
            yield Server(f"http://127.0.0.1:{port}", process.pid)
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def server_cpu_seconds(master_pid: int) -> float:
    """Return the CPU seconds used so far by a gunicorn master's workers and by the PostgreSQL
    processes of this machine (the database's share of the work; none when it runs elsewhere)."""
    total = 0.0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == master_pid or name.startswith("postgres"):
            total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
    return total


def warm(target, cookie, times=24, headers=None, method="GET", body=None):
    """Send requests first, several at a time, so that every worker has loaded its templates,
    caches and database connection before the clock starts."""
    import urllib.request
    from concurrent.futures import ThreadPoolExecutor

    data = body.encode() if body else None

    def one(_):
        request = urllib.request.Request(
            target, data=data, method=method, headers={"Cookie": cookie, **(headers or {})}
        )
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except OSError:
            pass

    with ThreadPoolExecutor(max_workers=WRK_CONNECTIONS) as pool:
        list(pool.map(one, range(times)))


LIMITER = """
-- Stop each thread after its share of BENCH_HTTP_REQUESTS requests (wrk stops at the duration).
-- Counted where requests are made, at the same cost for every page whatever its size.
local limit = {per_thread}
local sent = 0
local prepared
function init(args)
  prepared = wrk.format()
end
function request()
  sent = sent + 1
  if sent > limit then
    wrk.thread:stop()
  end
  return prepared
end
"""


def wrk(target, cookie, seconds=HTTP_SECONDS, script="", requests=HTTP_REQUESTS, server=None):
    """Run wrk, bounded in time (`seconds`) and in requests (`requests`, shared by its threads),
    with 2 threads and 8 connections; parse req/s, p50, p99 and the slowest request, and with
    `server` the CPU time its workers and the database spent per request."""
    lua = OUT_DIR / f"wrk-{abs(hash((target, script))) % 10**8}.lua"
    lua.write_text(script + LIMITER.format(per_thread=max(1, requests // WRK_THREADS)))
    command = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{WRK_CONNECTIONS}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(lua),
    ]
    if cookie:
        command += ["-H", f"Cookie: {cookie}"]
    cpu_before = server_cpu_seconds(server.pid) if server else None
    output = subprocess.run(
        command + [target], capture_output=True, text=True, timeout=seconds + 30
    ).stdout
    cpu = server_cpu_seconds(server.pid) - cpu_before if server else None

    def duration(value, unit):
        value = float(value)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    def latency(label):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.M)
        return duration(*match.groups()) if match else None

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", output)
    stats = re.search(r"^\s+Latency\s+([\d.]+)(us|ms|s)\s+\S+\s+([\d.]+)(us|ms|s)", output, re.M)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors:.*", output)
    count = int(done.group(1)) if done else None
    capped = count is not None and count >= requests - WRK_CONNECTIONS
    if capped and stats:
        # wrk divides by the whole duration even when its threads stopped at the request bound;
        # a closed loop of N connections serves N / (mean latency) requests per second.
        rate = round(WRK_CONNECTIONS / (duration(*stats.groups()[:2]) / 1000), 2)
    else:
        rate = float(rps.group(1)) if rps else None
    return {
        "rps": rate,
        "capped": capped,
        "requests": count,
        "cpu_ms": round(cpu * 1000 / count, 3) if cpu is not None and count else None,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "max_ms": duration(*stats.groups()[2:]) if stats else None,
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
        "socket_errors": errors.group(0) if errors else "",
    }


def http_runs(owner, admin):
    """Load the floor, the home page, the users list and the API over HTTP, in rounds."""
    if os.environ.get("BENCH_SKIP_HTTP") or not shutil.which("wrk"):
        return {"skipped": "wrk not installed (apt-get install wrk) or BENCH_SKIP_HTTP set"}
    cookie = signed_in_cookie(admin)
    with (
        gunicorn("tests.bench.floor_settings", free_port()) as floor,
        gunicorn("tests.bench.settings", free_port(), API_RATE_LIMIT="0/minute") as portal,
    ):
        targets = [
            {"label": FLOOR, "url": f"{floor.url}/floor/", "cookie": cookie, "server": floor},
        ]
        if runs("http"):  # BENCH_ONLY=api: the floor and the API alone
            targets += [
                {"label": "home", "url": f"{portal.url}/", "cookie": cookie},
                {
                    "label": "users list",
                    "url": f"{portal.url}{url('accounts:user_list')}",
                    "cookie": cookie,
                },
            ]
        for target in api_targets(owner, admin):
            targets.append({**target, "url": portal.url + target.pop("path"), "cookie": ""})
        for target in targets:
            target.setdefault("server", portal)
            warm(
                target["url"],
                target["cookie"],
                headers=target.get("headers"),
                method=target.get("method", "GET"),
                body=target.get("body"),
            )
        # Each run follows a run of the floor: pages are compared with the floor measured just
        # before them, so that the machine's slower and faster moments cancel out.
        floor_target, others = targets[0], targets[1:]
        rounds: dict[str, list[dict]] = {target["label"]: [] for target in targets}
        pairs: dict[str, list[tuple[dict, dict]]] = {target["label"]: [] for target in others}
        for _ in range(HTTP_ROUNDS):
            for target in others:
                floor_run = wrk(floor_target["url"], cookie, server=floor)
                run = wrk(
                    target["url"],
                    target["cookie"],
                    script=target.get("script", ""),
                    server=target["server"],
                )
                rounds[FLOOR].append(floor_run)
                rounds[target["label"]].append(run)
                pairs[target["label"]].append((floor_run, run))
    return {label: summarise(runs, pairs.get(label, [])) for label, runs in rounds.items()}


def summarise(runs: list[dict], pairs: list[tuple[dict, dict]]) -> dict:
    """Fold the rounds of one target: medians of req/s, p50, p99 and CPU per request, the
    slowest request, and the medians of its ratios to the floor runs just before it (requests
    per second, and requests per CPU second: the steadier of the two on a shared machine)."""

    def median(key, rows=runs):
        values = [row[key] for row in rows if row.get(key) is not None]
        return round(statistics.median(values), 3) if values else None

    def ratios(of):
        found = [of(floor, run) for floor, run in pairs]
        return [round(value, 3) for value in found if value is not None]

    measured = ratios(
        lambda floor, run: run["rps"] / floor["rps"] if run["rps"] and floor["rps"] else None
    )
    per_cpu = ratios(
        lambda floor, run: (
            floor["cpu_ms"] / run["cpu_ms"] if run.get("cpu_ms") and floor.get("cpu_ms") else None
        )
    )
    return {
        "rps": median("rps"),
        "requests": sum(row.get("requests") or 0 for row in runs),
        "p50_ms": median("p50_ms"),
        "p99_ms": median("p99_ms"),
        "max_ms": max(
            (row["max_ms"] for row in runs if row.get("max_ms") is not None), default=None
        ),
        "cpu_ms": median("cpu_ms"),
        "non_2xx": sum(row.get("non_2xx", 0) for row in runs),
        "socket_errors": "; ".join(
            row["socket_errors"] for row in runs if row.get("socket_errors")
        ),
        "of_floor": round(statistics.median(measured), 3) if measured else None,
        "of_floor_per_cpu": round(statistics.median(per_cpu), 3) if per_cpu else None,
        "ratios": measured,
        "ratios_per_cpu": per_cpu,
        "rounds": [row.get("rps") for row in runs],
    }


def measure_screens(owner, size):
    """Measure every screen for the owner's administrator, and the floor, in-process."""
    admin = seed.bench_admin(owner)
    sample = seed.User.objects.filter(owner=owner, role__isnull=False).order_by("pk")[size // 2]
    cookie = signed_in_cookie(admin)
    portal = InProcess(WSGIHandler(), cookie)
    results = {FLOOR: measure_page(InProcess(FloorHandler(), cookie), "/floor/")}
    results[FLOOR]["path"] = "/floor/"
    # A search the owner's people changed since (or a text nobody asked for yet) is searched
    # again: moving people_version before each request measures that first search.
    first_time = {
        "activity, person search, first time": lambda: seed.User.objects.people_changed(owner.pk)
    }
    for label, path, compare in screens_for(owner, admin, sample):
        results[label] = measure_page(portal, path, before_each=first_time.get(label))
        results[label]["path"] = path
        results[label]["compare"] = compare
    floor = results[FLOOR].get("p50_ms")
    for label, row in results.items():
        if "p50_ms" not in row:
            continue
        other = results.get(row.get("compare") or "")
        if other and other.get("p50_ms"):
            row["vs_admin"] = round(row["p50_ms"] / other["p50_ms"], 2)
        if floor and label != FLOOR:
            row["vs_floor"] = round(row["p50_ms"] / floor, 1)
    return results


def screens_at_scale(screens: dict, goal) -> None:
    """Goals of the screens at the biggest owner (issue #23): who has access p50 within 50 ms,
    and the filtered activity pages' p95 within 3 times the floor's p95."""
    who = screens.get("who has access", {})
    if "p50_ms" in who:
        goal("who has access: p50 within 50 ms", who["p50_ms"] <= 50, f"p50 {who['p50_ms']} ms")
    floor = screens.get(FLOOR, {}).get("p95_ms")
    for label in (
        "activity, person search",
        "activity, one person",
        "activity, by type",
        "activity, one day",
    ):
        row = screens.get(label, {})
        if floor and "p95_ms" in row:
            times = row["p95_ms"] / floor
            goal(
                f"{label}: p95 within 3 × the floor's p95",
                times <= 3,
                f"{times:.1f} × (p95 {row['p95_ms']} ms against {floor} ms)",
            )


def goals(report) -> list[dict]:
    """Check the figures against the goals the benchmark tracks (README, "Benchmarks")."""
    biggest = report["screens"].get(f"{max(SIZES):,} users", {}) if SIZES else {}
    rows = []

    def goal(name, met, figure):
        rows.append({"goal": name, "met": bool(met), "figure": figure})

    screens_at_scale(biggest, goal)
    for label in ("users list, first page", "users list, search"):
        ratio = biggest.get(label, {}).get("vs_admin")
        if ratio is not None:
            goal(
                f"{label} at {max(SIZES):,} users faster than Django's admin",
                ratio < 1,
                f"{ratio:.2f} × the admin's time",
            )
    if report["middleware"]:
        worst = max(row["hit_p95_ms"] for row in report["middleware"])
        goal(
            "permission middleware under 0.3 ms on a cache hit, any number of groups",
            worst < 0.3,
            f"p95 {worst:.4f} ms at worst (1, 10, 50 groups)",
        )
    sod = report.get("sod")
    if sod:
        goal(
            f"SoD check of one change against {sod['rules']} rules: at most 2 queries, "
            "p95 within 20 ms",
            sod["check_queries"] <= 2 and sod["check_p95_ms"] <= 20,
            f"{sod['check_queries']} queries, p95 {sod['check_p95_ms']} ms at "
            f"{sod['users']:,} users",
        )
        goal(
            f"SoD violations report for the whole owner ({sod['rules']} rules): p95 within 2 s",
            sod["report_p95_ms"] <= 2000,
            f"p95 {sod['report_p95_ms']} ms at {sod['users']:,} users",
        )
    jit = report.get("elevations")
    if jit:
        goal(
            "a user with no active elevation costs 0 extra queries per request",
            jit["extra_no_active_hit"] == 0 and jit["extra_no_active_page"] == 0,
            f"{jit['extra_no_active_hit']} extra in the permission middleware on a hit, "
            f"{jit['extra_no_active_page']} extra on the home page",
        )
        goal(
            "the permissions miss path with an elevation in force stays within 2 queries",
            jit["miss_with_elevation"] <= 2,
            f"{jit['miss_with_elevation']} queries",
        )
    hooks = report.get("webhooks")
    if hooks:
        goal(
            f"a change reaches a local webhook receiver p95 <= {webhook_bench.GOAL_P95:g} s after "
            f"commit at {hooks['rate_asked']:g} changes per second",
            hooks["goal_met"],
            f"p95 {hooks['p95_s']} s, p50 {hooks['p50_s']} s, {hooks['delivered']} of "
            f"{hooks['changes']} delivered at {hooks['rate_achieved']} changes/s",
        )
    http = report["http"]
    one, many = http.get(api_bench.AUTHZEN_ONE, {}), http.get(api_bench.AUTHZEN_BATCH, {})
    if one.get("of_floor"):
        goal(
            "one AuthZEN decision over HTTP within 80 % of the floor's throughput",
            one["of_floor"] >= 0.8,
            f"{one['of_floor']:.0%} ({one['rps']:.0f} req/s)",
        )
    if one.get("p50_ms") and many.get("p50_ms"):
        times = many["p50_ms"] / one["p50_ms"]
        goal(
            f"{api_bench.BATCH} AuthZEN decisions in one call within 3 × one decision",
            times <= 3,
            f"{times:.1f} × (p50 {many['p50_ms']} ms against {one['p50_ms']} ms)",
        )
    users = http.get("users list", {})
    if users.get("of_floor"):
        goal(
            f"users list first page over HTTP at {max(SIZES):,} users: at least 25 % of the "
            "floor's throughput",
            users["of_floor"] >= 0.25,
            f"{users['of_floor']:.0%} ({users['rps']:.0f} req/s); per CPU second "
            + (f"{users['of_floor_per_cpu']:.0%}" if users.get("of_floor_per_cpu") else "unknown"),
        )
    floor, home = http.get(FLOOR, {}), http.get("home", {})
    if floor.get("rps") and home.get("of_floor"):
        goal(
            "home page throughput within 80 % of the bare signed-in view",
            home["of_floor"] >= 0.8,
            f"{home['of_floor']:.0%} (median of {len(home['ratios'])} rounds, "
            f"{min(home['ratios']):.0%} to {max(home['ratios']):.0%}; {home['rps']:.0f} "
            f"against {floor['rps']:.0f} req/s); per CPU second "
            + (f"{home['of_floor_per_cpu']:.0%}" if home.get("of_floor_per_cpu") else "unknown"),
        )
    sizes = list(report["screens"].values())
    if len(sizes) > 1:
        moved = [
            label
            for label, row in sizes[0].items()
            if "queries" in row
            and any(
                other.get(label, {}).get("queries") not in (None, row["queries"])
                for other in sizes[1:]
            )
        ]
        goal(
            "every screen's queries independent of the number of users",
            not moved,
            "same at " + " and ".join(report["screens"]) if not moved else ", ".join(moved),
        )
    return rows


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    call_command("migrate", "--no-input", verbosity=0)
    call_command("collectstatic", "--no-input", verbosity=0)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": f"PostgreSQL {connection.pg_version // 10000}",
        "pace_ms": {"start": machine_pace()},
        "seeding": {},
        "screens": {},
        "middleware": [],
        "sod": {},
        "elevations": {},
        "http": {},
    }
    biggest = None
    for size in SIZES:
        owner = seed.owner_for(size)
        seed.seed_model(owner)
        sod_bench.seed_rules(owner)  # before the screens: a user's page shows their violations
        seconds = seed.seed_users(owner, size)
        report["seeding"][f"{size:,} users"] = f"{seconds:.1f}s"
        biggest = owner
    seconds, note = seed.seed_events(biggest, EVENTS)
    report["seeding"]["events"] = f"{note} ({seconds:.1f}s)"
    if connection.vendor == "postgresql":
        # Bulk loads leave the planner's statistics behind (it would guess 44 users for an owner
        # of 100,000 and sort them all) and the users' pages not yet marked all-visible (no
        # index-only scans); autovacuum does both for a production database on its own.
        with connection.cursor() as cursor:
            cursor.execute(f"VACUUM ANALYZE {seed.User._meta.db_table}")
            cursor.execute("ANALYZE")
    if runs("screens"):
        for size in SIZES:
            report["screens"][f"{size:,} users"] = measure_screens(seed.owner_for(size), size)
    if runs("middleware"):
        report["middleware"] = measure_middleware(biggest)
    if runs("sod"):
        report["sod"] = sod_bench.measure(biggest, repeat=REPEAT)
    if runs("elevations"):
        report["elevations"] = elevation_bench.measure(biggest, page_queries=home_page_queries)
    if runs("webhooks"):
        report["webhooks"] = webhook_bench.measure(biggest)
    report["http"] = (
        http_runs(biggest, seed.bench_admin(biggest))
        if runs("http") or runs("api")
        else {"skipped": "BENCH_ONLY"}
    )
    report["goals"] = goals(report)
    report["pace_ms"]["end"] = machine_pace()
    report["total_seconds"] = round(time.monotonic() - started, 1)
    print_report(report)
    (OUT_DIR / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"\nWritten to {OUT_DIR / 'latest.json'}")


def print_report(report):
    print(
        f"\nBilling Access benchmark, {report['when']} on {report['machine']} ({report['database']})"
    )
    pace = report["pace_ms"]
    print(
        f"Machine pace: a fixed loop of pure Python took {pace['start']} ms at the start and "
        f"{pace['end']} ms at the end (lower is faster)"
    )
    print("Seeding:", ", ".join(f"{k}: {v}" for k, v in report["seeding"].items()))
    for size, screens in report["screens"].items():
        print(f"\nScreens at {size} (in-process WSGI calls, {REPEAT} requests each; ms)")
        print(
            f"  {'screen':34} {'queries':>7} {'p50':>8} {'p95':>8} {'db':>8} {'python':>8}"
            f" {'×floor':>7} {'÷admin':>7}"
        )
        for label, row in screens.items():
            if "error" in row:
                print(f"  {label:34} {row['error']}")
                continue
            queries = str(row["queries"])
            if row.get("queries_max", row["queries"]) != row["queries"]:
                queries += f"-{row['queries_max']}"
            vs_floor = f"{row['vs_floor']:.1f}" if "vs_floor" in row else ""
            vs_admin = f"{row['vs_admin']:.2f}" if "vs_admin" in row else ""
            print(
                f"  {label:34} {queries:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} "
                f"{row['db_ms']:>8} {row['python_ms']:>8} {vs_floor:>7} {vs_admin:>7}"
            )
    if report["middleware"]:
        print("\nPermission middleware alone, per request (ms)")
        print(f"  {'groups':>6} {'hit p50':>9} {'hit p95':>9} {'miss p50':>9} {'miss p95':>9}")
    for row in report["middleware"]:
        print(
            f"  {row['groups']:>6} {row['hit_p50_ms']:>9} {row['hit_p95_ms']:>9} "
            f"{row['miss_p50_ms']:>9} {row['miss_p95_ms']:>9}"
        )
    sod = report.get("sod")
    if sod:
        print(
            f"\nSeparation of duties at {sod['users']:,} users, {sod['rules']} rules (ms)\n"
            f"  SoD check of one change against {sod['rules']} rules ({sod['change']}, "
            f"reaching {sod['check_reached']:,} people): "
            f"{sod['check_queries']} queries, p50 {sod['check_p50_ms']}, "
            f"p95 {sod['check_p95_ms']}{' (refused)' if sod['check_refused'] else ''}\n"
            f"  violations report for the whole owner ({sod['report_violations']:,} violations, "
            f"{sod.get('report_queries', '?')} queries, {sod['report_runs']} runs): "
            f"p50 {sod['report_p50_ms']}, p95 {sod['report_p95_ms']}"
        )
    jit = report.get("elevations")
    if jit:
        names = {
            "baseline": "no eligibility",
            "idle": "eligible, no active elevation",
            "active": "elevation in force",
        }
        print("\nJust-in-time access: queries per request (counted, not timed)")
        print(f"  {'user':32} {'miss':>5} {'hit':>5} {'home page':>10}")
        for kind, row in jit["users"].items():
            print(f"  {names[kind]:32} {row['miss']:>5} {row['hit']:>5} {row['page']:>10}")
        active = jit["users"]["active"]
        print(
            f"  first lookup after the elevation's end: {active['after_end']} queries (the "
            f"cached entry expires then), the next {active['after_end_again']}"
        )
        print(
            f"  extra for no active elevation: {jit['extra_no_active_hit']} (middleware, hit), "
            f"{jit['extra_no_active_page']} (home page); miss with an elevation: "
            f"{jit['miss_with_elevation']} queries"
        )
    hooks = report.get("webhooks")
    if hooks:
        print(
            f"\nWebhooks: {hooks['changes']} changes at {hooks['rate_achieved']} per second, one "
            f"worker process, a receiver on 127.0.0.1: after commit p50 {hooks['p50_s']} s, "
            f"p95 {hooks['p95_s']} s, max {hooks['max_s']} s; {hooks['bad_signatures']} bad "
            "signatures"
        )
    print(
        f"\nOver HTTP: gunicorn, 2 workers; wrk {WRK_THREADS} threads, {WRK_CONNECTIONS} "
        f"connections, on the same machine; {HTTP_ROUNDS} rounds, each run at most "
        f"{HTTP_SECONDS} s and {HTTP_REQUESTS:,} requests; medians of the rounds"
    )
    http = report["http"]
    if "skipped" in http:
        print("  skipped:", http["skipped"])
    else:
        print(
            f"  {'':40} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'cpu ms':>7}"
            f" {'of floor':>9} {'per cpu':>8}"
        )
        for label, row in http.items():
            ratio = f"{row['of_floor']:.0%}" if row.get("of_floor") else ""
            per_cpu = f"{row['of_floor_per_cpu']:.0%}" if row.get("of_floor_per_cpu") else ""
            problems = ""
            if row.get("non_2xx"):
                problems += f"  {row['non_2xx']} non-2xx"
            if row.get("socket_errors"):
                problems += f"  {row['socket_errors']}"
            print(
                f"  {label:40} {row['rps']!s:>8} {row['p50_ms']!s:>8} {row['p99_ms']!s:>8} "
                f"{row['max_ms']!s:>8} {row['cpu_ms']!s:>7} {ratio:>9} {per_cpu:>8}{problems}"
            )
        print(
            "  cpu ms: CPU time of the server's workers and PostgreSQL per request; per cpu: "
            "requests per CPU second against the floor's"
        )
    print("\nGoals")
    for row in report.get("goals", []):
        print(f"  [{'met' if row['met'] else 'NOT MET':>7}] {row['goal']}: {row['figure']}")


if __name__ == "__main__":
    main()
