"""`make bench` keeps working: the whole harness on a small database of its own.

Seeds owners of 300 and 600 users and 3,000 audit events, measures every screen, the permission
middleware and (with wrk installed, as `.ci/run` does) one short round over HTTP, then reads the
report: every screen answered, query counts do not depend on the number of users, no load run saw
an error. Timings are what `make bench` prints; a test never judges them.

Marked `bench`: the suite leaves it out (tests/conftest.py) and `make test` runs it once, on its
own, after the suite (`make bench-test` runs only it).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from django.conf import settings

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.bench


@pytest.fixture
def bench_database_url():
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        pytest.fail("The benchmark runs on PostgreSQL, as the suite does.")
    auth = db["USER"] + (f":{db['PASSWORD']}" if db["PASSWORD"] else "")
    server = f"postgres://{auth}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    # Named after the suite's database (one per checkout: bin/with-postgres), so that two
    # checkouts running it on one server never drop each other's.
    name = f"{db['NAME']}_bench_check"

    def drop():
        with psycopg.connect(f"{server}/postgres", autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    drop()
    yield f"{server}/{name}"
    drop()


def test_bench_runs_end_to_end_and_reports_every_figure(bench_database_url, tmp_path):
    env = {
        **os.environ,
        "DATABASE_URL": bench_database_url,
        "BENCH_SIZES": "300,600",
        "BENCH_EVENTS": "3000",
        "BENCH_REPEAT": "3",
        "BENCH_HTTP_SECONDS": "1",
        "BENCH_HTTP_ROUNDS": "1",
        "BENCH_OUT": str(tmp_path),
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, "-m", "tests.bench"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Goals" in result.stdout and "Machine pace" in result.stdout
    report = json.loads((tmp_path / "latest.json").read_text())

    assert report["pace_ms"]["start"] > 0 and report["pace_ms"]["end"] > 0
    assert set(report["screens"]) == {"300 users", "600 users"}
    for size, screens in report["screens"].items():
        assert "home" in screens and "users list, search" in screens
        assert "admin: user list, first page" in screens
        failed = {label: row["error"] for label, row in screens.items() if "error" in row}
        assert failed == {}, size
        assert all(row["queries"] > 0 and row["p50_ms"] > 0 for row in screens.values())
    assert report["screens"]["600 users"]["home"]["queries"] == 2  # the session and the user

    assert [row["groups"] for row in report["middleware"]] == [1, 10, 50]
    sod = report["sod"]
    assert sod["rules"] == 50 and sod["users"] >= 600
    assert sod["check_queries"] > 0 and sod["check_p95_ms"] > 0 and sod["report_p95_ms"] > 0
    assert "SoD check of one change against 50 rules" in result.stdout
    # Just-in-time access: query counts, exact whatever the machine.
    jit = report["elevations"]
    assert set(jit["users"]) == {"baseline", "idle", "active"}
    assert jit["users"]["idle"]["hit"] == 0 and jit["users"]["active"]["hit"] == 0
    assert jit["extra_no_active_hit"] == 0 and jit["extra_no_active_page"] == 0
    assert 0 < jit["miss_with_elevation"] <= 2
    assert jit["users"]["active"]["after_end"] > 0  # the cached entry expired with the elevation
    assert jit["users"]["active"]["after_end_again"] == 0
    assert "Just-in-time access: queries per request" in result.stdout
    goals = {row["goal"]: row for row in report["goals"]}
    for name in (
        "a user with no active elevation costs 0 extra queries per request",
        "the permissions miss path with an elevation in force stays within 2 queries",
    ):
        assert goals[name]["met"], goals[name]["figure"]
    independent = "every screen's queries independent of the number of users"
    assert goals[independent]["met"], goals[independent]["figure"]

    http = report["http"]
    if shutil.which("wrk") is None:
        assert "skipped" in http
        return
    assert set(http) == {
        "floor: bare signed-in view",
        "home",
        "users list",
        "API POST /authz/check",
        "API POST /authz/check, no explanation",
        "API GET /me",
        "AuthZEN POST /access/v1/evaluation",
        "AuthZEN POST /access/v1/evaluations (100)",
    }
    for label, row in http.items():
        assert row["requests"] > 0 and row["rps"] > 0, label
        assert row["non_2xx"] == 0 and row["socket_errors"] == "", label
    authzen = [row["goal"] for row in report["goals"] if "AuthZEN" in row["goal"]]
    assert len(authzen) == 2, authzen
