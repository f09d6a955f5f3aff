"""Benchmark the activity screens at scale: page times (p50/p95), query plans, CSV export.

    DATABASE_URL=postgres://…/billing_access_bench python -m tests.audit.bench_activity \
        --events 5000000 --export-rows 1000000

Loads demo data and tops the log up to --events (seed_events), then times the activity page
filtered by person, by type and by a day range, first page and a deep page (following the
keyset cursor), checks each query plan uses an index and never a sequential scan of the event
table, and streams a CSV export, reporting its time and the process's peak memory. Figures go
to var/bench/audit.json. Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--export-rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--out", default="var/bench/audit.json")
    args = parser.parse_args(argv)

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse

    from accounts.models import User
    from audit.models import AuditEvent

    call_command("migrate", verbosity=0)
    call_command("seed_demo", quiet=True)
    admin = User.objects.get(username="admin")
    have = AuditEvent.objects.filter(owner_id=admin.owner_id).count()
    if have < args.events:
        print(f"Seeding {args.events - have:,} events …", flush=True)
        call_command("seed_events", events=args.events - have, owner=admin.owner.slug, days=365)
    total = AuditEvent.objects.filter(owner_id=admin.owner_id).count()

    client = Client()
    client.force_login(admin, backend="accounts.backends.PortalBackend")
    middle = (
        AuditEvent.objects.filter(owner_id=admin.owner_id)
        .order_by("-occurred_at", "-id")
        .values_list("occurred_at", flat=True)[total // 2]
    )
    day = middle.date()
    scenarios = {
        "sign-ins": reverse("audit:activity"),
        "all events": reverse("audit:activity_tab", args=["all"]),
        "by person": reverse("audit:activity_tab", args=["all"]) + "?q=auditor",
        "by type": reverse("audit:activity_tab", args=["all"]) + "?action=user_changed",
        "by day range": reverse("audit:activity_tab", args=["all"])
        + f"?since={day}&until={day + datetime.timedelta(days=1)}",
        "failed attempts": reverse("audit:activity_tab", args=["failed"]),
    }
    results: dict = {"events": total, "pages": {}, "plans_ok": True}
    for name, url in scenarios.items():
        deep = _deep_url(client, url, middle)
        for label, target in (("first page", url), ("deep page", deep)):
            timings = []
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(target)
                timings.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200, (target, response.status_code)
            with CaptureQueriesContext(connection) as captured:
                client.get(target)
            plans = [_plan(q["sql"]) for q in captured if "audit_auditevent" in q["sql"]]
            seq_scan = any("Seq Scan on audit_auditevent" in p for p in plans)
            results["plans_ok"] &= not seq_scan
            entry = {
                "p50_ms": round(statistics.median(timings), 1),
                "p95_ms": round(_p95(timings), 1),
                "queries": len(captured),
                "indexes": sorted({i for p in plans for i in _indexes(p)}),
                "seq_scan": seq_scan,
            }
            results["pages"][f"{name} · {label}"] = entry
            print(
                f"{name:16} {label:10} p50 {entry['p50_ms']:7.1f} ms  p95 {entry['p95_ms']:7.1f} ms"
                f"  {entry['indexes']}",
                flush=True,
            )

    results["export"] = _export(client, admin.owner_id, args.export_rows)
    print(f"export: {results['export']}", flush=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"Figures written to {out}")
    return 0 if results["plans_ok"] else 1


def _deep_url(client, url, middle) -> str:
    """Return the URL of the page that starts around the middle of the log (a keyset cursor)."""
    from django.db.models import Max

    from audit.models import AuditEvent

    pk = AuditEvent.objects.filter(occurred_at=middle).aggregate(Max("id"))["id__max"]
    from audit.queries import encode_cursor

    cursor = encode_cursor(SimpleNamespace(occurred_at=middle, pk=pk))
    return f"{url}{'&' if '?' in url else '?'}after={cursor}"


def _plan(sql: str) -> str:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())


def _indexes(plan: str) -> list[str]:
    return [
        line.split(" using ")[1].split(" ")[0] for line in plan.splitlines() if " using " in line
    ]


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


def _export(client, owner_id, rows: int) -> dict:
    """Stream the CSV export of the whole log (up to `rows` rows) and measure it."""
    from django.urls import reverse

    from audit.models import AuditEvent

    newest = (
        AuditEvent.objects.filter(owner_id=owner_id)
        .order_by("-occurred_at", "-id")
        .values_list("occurred_at", flat=True)[min(rows, 10**9) - 1 : min(rows, 10**9)]
    )
    since = ""
    if newest:
        since = f"?since={newest[0].date() + datetime.timedelta(days=1)}"
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    response = client.get(reverse("audit:export", args=["all"]) + since)
    size = lines = 0
    for chunk in response.streaming_content:
        size += len(chunk)
        lines += chunk.count(b"\n")
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": lines - 1,
        "seconds": round(seconds, 1),
        "rows_per_second": round((lines - 1) / seconds),
        "megabytes": round(size / 1e6, 1),
        "peak_rss_mb": round(after / 1024, 1),
        "peak_rss_growth_mb": round((after - before) / 1024, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
