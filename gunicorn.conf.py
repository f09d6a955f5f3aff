"""Gunicorn's settings for the portal, from the environment (README, "Configuration").

`gunicorn billing_access.wsgi` reads this file from the working directory (the image's /app);
elsewhere name it with `-c gunicorn.conf.py`. Threads (gthread) by default: a connection that
sends nothing is handed back to the poller instead of holding a thread, and a slow client holds
one thread, not a whole worker. Requests are bounded by gunicorn's line and header limits and
`timeout`; bodies by Django's DATA_UPLOAD_MAX_MEMORY_SIZE, which refuses an announced large body
before reading it.
"""

import os
import shutil
import tempfile
from pathlib import Path

from billing_access import env

bind = env.get_list("GUNICORN_BIND", ["127.0.0.1:8000"])
workers = env.get_int("GUNICORN_WORKERS", 2)
threads = env.get_int("GUNICORN_THREADS", 4)
worker_class = "gthread" if threads > 1 else "sync"
timeout = env.get_int("GUNICORN_TIMEOUT", 30)
graceful_timeout = timeout
keepalive = env.get_int("GUNICORN_KEEPALIVE", 5)
# A worker is replaced after this many requests (with jitter, so not all at once): a slow leak in
# a dependency never grows without bound. 0 turns it off.
max_requests = env.get_int("GUNICORN_MAX_REQUESTS", 2000)
max_requests_jitter = max_requests // 10
limit_request_line = env.get_int("GUNICORN_LIMIT_REQUEST_LINE", 4094)
limit_request_fields = env.get_int("GUNICORN_LIMIT_REQUEST_FIELDS", 50)
limit_request_field_size = env.get_int("GUNICORN_LIMIT_REQUEST_FIELD_SIZE", 8190)
# The heartbeat files on memory, not on a container's overlay disk (which can stall the check);
# gunicorn makes them with mkstemp, so a shared folder is safe.
_SHM = "/dev/shm"  # noqa: S108
worker_tmp_dir = _SHM if os.path.isdir(_SHM) else None
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms id=%({x-request-id}o)s'
proc_name = "billing-access"

# Metrics of every worker go through files in PROMETHEUS_MULTIPROC_DIR (prometheus-client's
# multiprocess mode), so a scrape that reaches any worker sees the sum of all; without the
# variable a fresh folder is made per server. It is emptied when the server starts, and a dead
# worker's gauges are dropped.
if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="billing-access-metrics-")


def on_starting(server):
    folder = Path(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    if folder.exists():
        for stale in folder.glob("*.db"):
            stale.unlink()
    else:
        folder.mkdir(parents=True)
    server.log.info("Metrics of the workers in %s", folder)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    folder = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if Path(folder).name.startswith("billing-access-metrics-"):
        shutil.rmtree(folder, ignore_errors=True)  # only the folder made above
