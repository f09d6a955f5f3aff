"""How soon a change reaches a webhook receiver (issue 21's goal: p95 ≤ 2 s after commit at 50
changes per second).

A real receiver (a threaded HTTP server on 127.0.0.1) and a real worker process (`manage.py
deliver`, one, as on a small machine) run beside this process, which commits changes at a steady
rate (deactivate / reactivate, each one `user.*` event to one endpoint) and notes each commit's
time; the receiver notes each arrival and checks its signature. Latency is arrival minus commit.

Standalone, against a database of its own (created and migrated when missing):
    DATABASE_URL=postgres://postgres@127.0.0.1:5432/billing_access_bench_webhooks \\
        .venv/bin/python -m tests.bench.webhooks
`measure(owner)` is the same run for `tests.bench.__main__`. Tunables: BENCH_WEBHOOK_RATE
(changes per second, default 50), BENCH_WEBHOOK_SECONDS (default 10).
"""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RATE = float(os.environ.get("BENCH_WEBHOOK_RATE", "50"))
SECONDS = float(os.environ.get("BENCH_WEBHOOK_SECONDS", "10"))
GOAL_P95 = 2.0
ROOT = Path(__file__).resolve().parents[2]


class Receiver:
    """Notes when each event arrives (by audit event id) and whether its signature verified."""

    def __init__(self):
        from webhooks import signing

        self.secret = ""
        self.arrivals: dict[int, float] = {}
        self.bad = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                now = time.time()
                ok = signing.verify(receiver.secret, dict(self.headers.items()), body, now=int(now))
                event_id = json.loads(body)["data"]["audit_event"]["id"]
                receiver.arrivals.setdefault(event_id, now)
                receiver.bad += not ok
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _worker() -> subprocess.Popen:
    from django.db import connection

    s = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": os.environ["DJANGO_SETTINGS_MODULE"],
        "DATABASE_URL": (
            f"postgres://{s['USER'] or 'postgres'}"
            + (f":{s['PASSWORD']}" if s.get("PASSWORD") else "")
            + f"@{s['HOST'] or '127.0.0.1'}:{s['PORT'] or 5432}/{s['NAME']}"
        ),
        "WEBHOOK_ALLOW_PRIVATE_ADDRESSES": "true",
        "LOG_LEVEL": "WARNING",
    }
    return subprocess.Popen(
        [sys.executable, "manage.py", "deliver", "--no-startup-delay", "-v0"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _pct(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def measure(owner, *, rate: float = RATE, seconds: float = SECONDS) -> dict:
    """Commit `rate` changes per second for `seconds` and return the delivery latencies."""
    from django.conf import settings
    from django.db import transaction

    from accounts import users
    from accounts.choices import AccessSource
    from accounts.models import User
    from audit.models import AuditEvent
    from roles import catalog
    from tests.builders import make_role, make_role_group
    from webhooks import services

    settings.WEBHOOK_ALLOW_PRIVATE_ADDRESSES = True
    name = f"bench-webhooks-{owner.pk}-{time.time_ns()}"
    group = make_role_group(owner, name, grants={catalog.USERS: catalog.FULL})
    actor = User.objects.create_user(
        name,
        f"{name}@example.test",
        owner=owner,
        role=make_role(owner, name, groups=[group]),
        privilege_level=10,
    )
    people = [
        User.objects.create_user(
            f"bw-{owner.pk}-{actor.pk}-{n}",
            f"bw-{owner.pk}-{actor.pk}-{n}@example.test",
            owner=owner,
            privilege_level=1,
        )
        for n in range(50)
    ]
    receiver = Receiver()
    endpoint, receiver.secret = services.create_endpoint(
        reason="Receives our change events",
        actor=actor,
        name="Bench receiver",
        url=receiver.url,
        event_types=["user.deactivated", "user.reactivated"],
    )
    worker = _worker()
    commits: dict[int, float] = {}
    try:
        time.sleep(2)  # the worker starts (Django set-up) before the clock runs
        count = int(rate * seconds)
        start = time.monotonic()
        late = 0
        for n in range(count):
            due = start + n / rate
            pause = due - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            else:
                late += 1
            person = people[n % len(people)]
            allow = (n // len(people)) % 2 == 1
            with transaction.atomic():
                if allow:
                    users.reactivate_user(
                        person, actor=actor, reason="Bench", source=AccessSource.SCREEN
                    )
                else:
                    users.deactivate_user(
                        person, actor=actor, reason="Bench", source=AccessSource.SCREEN
                    )
                event_id = (
                    AuditEvent.objects.filter(subject_user_id=person.pk)
                    .order_by("-id")
                    .values_list("id", flat=True)
                    .first()
                )
            commits[event_id] = time.time()
        achieved = count / (time.monotonic() - start)
        deadline = time.monotonic() + 60
        while len(receiver.arrivals) < len(commits) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        receiver.close()
        services.delete_endpoint(endpoint, reason="No longer used", actor=actor)
    latencies = [receiver.arrivals[e] - t for e, t in commits.items() if e in receiver.arrivals]
    result = {
        "changes": len(commits),
        "rate_asked": rate,
        "rate_achieved": round(achieved, 1),
        "late_starts": late,
        "delivered": len(latencies),
        "bad_signatures": receiver.bad,
        "p50_s": round(statistics.median(latencies), 3) if latencies else None,
        "p95_s": round(_pct(latencies, 0.95), 3) if latencies else None,
        "max_s": round(max(latencies), 3) if latencies else None,
    }
    result["goal_met"] = bool(
        latencies
        and len(latencies) == len(commits)
        and result["p95_s"] <= GOAL_P95
        and result["rate_achieved"] >= 0.95 * rate
    )
    return result


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import OperationalError, connection

    try:
        connection.ensure_connection()
    except OperationalError:
        with connection._nodb_cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{connection.settings_dict["NAME"]}"')
    call_command("migrate", verbosity=0)
    from accounts.models import Owner

    owner, _ = Owner.objects.get_or_create(slug="bench-webhooks", defaults={"name": "Bench"})
    result = measure(owner)
    print(json.dumps(result, indent=2))
    verdict = "met" if result["goal_met"] else "NOT MET"
    print(
        f"Webhook latency at {result['rate_achieved']} changes/s: p50 {result['p50_s']} s, "
        f"p95 {result['p95_s']} s (goal p95 <= {GOAL_P95} s: {verdict})"
    )


if __name__ == "__main__":
    main()
