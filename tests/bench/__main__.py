"""`make bench`: seed a dedicated PostgreSQL database, measure, print one table, write JSON.

Environment: BENCH_SIZES (default "10000,100000" users per owner), BENCH_EVENTS (default
5000000 audit events, 0 to skip), BENCH_REPEAT (requests per screen, default 40),
BENCH_HTTP_SECONDS (default 8 per load run), BENCH_SKIP_HTTP=1 to skip the gunicorn runs.
"""

from __future__ import annotations

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
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.urls import NoReverseMatch, reverse  # noqa: E402

from roles import permissions  # noqa: E402
from tests.bench import seed  # noqa: E402
from tests.bench.api import api_http_runs  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
OUT_DIR = ROOT / "var" / "bench"
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000").split(",") if s]
EVENTS = int(os.environ.get("BENCH_EVENTS", "5000000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "40"))
HTTP_SECONDS = int(os.environ.get("BENCH_HTTP_SECONDS", "8"))


class QueryTimer:
    """Count queries and add up their database time (connection.execute_wrapper)."""

    def __init__(self):
        self.count = 0
        self.seconds = 0.0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.count += 1


def pct(values, q):
    values = sorted(values)
    if not values:
        return 0.0
    index = min(len(values) - 1, max(0, round(q / 100 * (len(values) - 1))))
    return values[index]


def measure_page(client, path, repeat=REPEAT):
    """Request `path` repeatedly in-process; return latency percentiles, queries, db/python split."""
    for _ in range(3):
        response = client.get(path)
        if response.status_code != 200:
            return {"error": f"HTTP {response.status_code}"}
        if hasattr(response, "streaming_content"):
            b"".join(response.streaming_content)
    totals, dbs, queries = [], [], 0
    for _ in range(repeat):
        timer = QueryTimer()
        with connection.execute_wrapper(timer):
            started = time.perf_counter()
            response = client.get(path)
            if hasattr(response, "streaming_content"):
                b"".join(response.streaming_content)
            elapsed = time.perf_counter() - started
        totals.append(elapsed * 1000)
        dbs.append(timer.seconds * 1000)
        queries = timer.count
    return {
        "p50_ms": round(pct(totals, 50), 2),
        "p95_ms": round(pct(totals, 95), 2),
        "db_ms": round(statistics.median(dbs), 2),
        "python_ms": round(statistics.median(totals) - statistics.median(dbs), 2),
        "queries": queries,
    }


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
        ("activity, by user", url("audit:activity", query=f"person={sample_user.username}"), None),
        ("activity, by type", url("audit:activity", query="action=sign_in_failed"), None),
        (
            "activity, one day",
            url("audit:activity", query="since=2026-06-01&until=2026-06-02"),
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
    """Time permission resolution per request for 1, 10 and 50 role groups, hit and miss."""
    rows = []
    for count in (1, 10, 50):
        user = seed.user_with_groups(owner, count)
        cache.clear()
        permissions.local_entries.clear()
        permissions.for_user(user)
        hits = []
        for _ in range(2000):
            started = time.perf_counter()
            permissions.for_user(user).has("invoices", "read")
            hits.append((time.perf_counter() - started) * 1000)
        misses = []
        for _ in range(200):
            cache.clear()
            permissions.local_entries.clear()
            started = time.perf_counter()
            permissions.for_user(user).has("invoices", "read")
            misses.append((time.perf_counter() - started) * 1000)
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


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def gunicorn(settings_module, port):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": settings_module}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "billing_access.wsgi",
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
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


def warm(target, cookie, times=10):
    """Send a few requests first so that both workers have loaded templates and connections."""
    import urllib.request

    for _ in range(times):
        request = urllib.request.Request(target, headers={"Cookie": cookie})
        try:
            urllib.request.urlopen(request, timeout=30).read()
        except OSError:
            pass


def wrk(target, cookie, seconds=HTTP_SECONDS, script=None):
    """Run wrk (bounded: 2 threads, 8 connections, `seconds`) and parse req/s, p50, p99."""
    warm(target, cookie)
    command = [
        "wrk",
        "-t2",
        "-c8",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "--latency",
        "-H",
        f"Cookie: {cookie}",
    ]
    if script:
        command += ["-s", script]
    output = subprocess.run(
        command + [target], capture_output=True, text=True, timeout=seconds + 30
    ).stdout

    def latency(label):
        match = re.search(rf"^\s+{label}%\s+([\d.]+)(us|ms|s)", output, re.M)
        if not match:
            return None
        value, unit = float(match.group(1)), match.group(2)
        return round(value / 1000 if unit == "us" else value * 1000 if unit == "s" else value, 2)

    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    return {
        "rps": float(rps.group(1)) if rps else None,
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def http_runs(owner, admin):
    if os.environ.get("BENCH_SKIP_HTTP") or not shutil.which("wrk"):
        return {"skipped": "wrk not installed (apt-get install wrk) or BENCH_SKIP_HTTP set"}
    session = SessionStore()
    session["_auth_user_id"] = str(admin.pk)
    session["_auth_user_backend"] = "accounts.backends.PortalBackend"
    session["_auth_user_hash"] = admin.get_session_auth_hash()
    session.create()
    cookie = f"{settings.SESSION_COOKIE_NAME}={session.session_key}"
    results = {}
    port = free_port()
    with gunicorn("tests.bench.settings", port) as base:
        results["home"] = wrk(f"{base}/", cookie)
        users = url("accounts:user_list")
        if users:
            results["users list"] = wrk(f"{base}{users}", cookie)
    results |= api_http_runs(
        owner, admin, out_dir=OUT_DIR, gunicorn=gunicorn, wrk=wrk, free_port=free_port
    )
    port = free_port()
    with gunicorn("tests.bench.floor_settings", port) as base:
        results["floor: bare signed-in view"] = wrk(f"{base}/floor/", cookie)
    return results


def main():
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    call_command("migrate", "--no-input", verbosity=0)
    report = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "database": connection.vendor,
        "seeding": {},
        "screens": {},
        "middleware": [],
        "http": {},
    }
    biggest = None
    for size in SIZES:
        owner = seed.owner_for(size)
        seed.seed_model(owner)
        seconds = seed.seed_users(owner, size)
        report["seeding"][f"{size} users"] = f"{seconds:.1f}s"
        biggest = owner
    seconds, note = seed.seed_events(biggest, EVENTS)
    report["seeding"]["events"] = f"{note} ({seconds:.1f}s)"
    if connection.vendor == "postgresql":
        # Bulk loads leave the planner's statistics behind (it would guess 44 users for an owner
        # of 100,000 and sort them all); autovacuum analyses a production database on its own.
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    for size in SIZES:
        owner = seed.owner_for(size)
        admin = seed.bench_admin(owner)
        sample = seed.User.objects.filter(owner=owner, role__isnull=False).order_by("pk")[size // 2]
        client = Client()
        client.force_login(admin, backend="accounts.backends.PortalBackend")
        results = {}
        for label, path, compare in screens_for(owner, admin, sample):
            results[label] = measure_page(client, path)
            results[label]["path"] = path
            results[label]["compare"] = compare
        for label, row in results.items():
            other = results.get(row.get("compare") or "")
            if other and "p50_ms" in row and other.get("p50_ms"):
                row["vs_admin"] = round(row["p50_ms"] / other["p50_ms"], 2)
        report["screens"][f"{size} users"] = results
    report["middleware"] = measure_middleware(biggest)
    report["http"] = http_runs(biggest, seed.bench_admin(biggest))
    report["total_seconds"] = round(time.monotonic() - started, 1)
    print_report(report)
    (OUT_DIR / "latest.json").write_text(json.dumps(report, indent=2))
    print(f"\nWritten to {OUT_DIR / 'latest.json'}")


def print_report(report):
    print(
        f"\nBilling Access benchmark, {report['when']} on {report['machine']} ({report['database']})"
    )
    print("Seeding:", ", ".join(f"{k}: {v}" for k, v in report["seeding"].items()))
    for size, screens in report["screens"].items():
        print(f"\nScreens at {size} (in-process, {REPEAT} requests each; ms)")
        print(
            f"  {'screen':34} {'queries':>7} {'p50':>8} {'p95':>8} {'db':>8} {'python':>8} {'÷admin':>7}"
        )
        for label, row in screens.items():
            if "error" in row:
                print(f"  {label:34} {row['error']}")
                continue
            ratio = f"{row['vs_admin']:.2f}" if "vs_admin" in row else ""
            print(
                f"  {label:34} {row['queries']:>7} {row['p50_ms']:>8} {row['p95_ms']:>8} "
                f"{row['db_ms']:>8} {row['python_ms']:>8} {ratio:>7}"
            )
    print("\nPermission resolution per request (ms)")
    print(f"  {'groups':>6} {'hit p50':>9} {'hit p95':>9} {'miss p50':>9} {'miss p95':>9}")
    for row in report["middleware"]:
        print(
            f"  {row['groups']:>6} {row['hit_p50_ms']:>9} {row['hit_p95_ms']:>9} "
            f"{row['miss_p50_ms']:>9} {row['miss_p95_ms']:>9}"
        )
    print("\nOver HTTP: gunicorn, 2 workers; wrk 2 threads, 8 connections, on the same 2 cores")
    http = report["http"]
    if "skipped" in http:
        print("  skipped:", http["skipped"])
        return
    floor = http.get("floor: bare signed-in view", {}).get("rps")
    for label, row in http.items():
        ratio = f"{row['rps'] / floor:.0%} of floor" if floor and row.get("rps") else ""
        print(
            f"  {label:30} {row['rps']:>9} req/s  p50 {row['p50_ms']} ms  p99 {row['p99_ms']} ms  {ratio}"
        )


if __name__ == "__main__":
    main()
