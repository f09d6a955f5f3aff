"""Benchmark settings: the product's settings, plus Django's admin mounted for comparison.

The admin is never part of the product; it exists here only so that the benchmark can measure
the portal against the tool a team would otherwise reach for, over the same data.
"""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "bench-secret-key-" + "b" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "YmVuY2gtZmllbGQtZW5jcnlwdGlvbi1rZXktMzJieXQ=")

from billing_access.settings import *  # noqa: E402, F403

INSTALLED_APPS = [*INSTALLED_APPS, "django.contrib.admin"]  # noqa: F405
ROOT_URLCONF = "tests.bench.urls"
ALLOWED_HOSTS = ["*"]
DEBUG = False
LOGGING = {"version": 1, "disable_existing_loggers": False, "root": {"level": "WARNING"}}
# Static files as in production (collected, hashed names, served by WhiteNoise); the benchmark
# collects them into its own folder first.
STATIC_ROOT = Path(os.environ.get("BENCH_OUT") or BASE_DIR / "var" / "bench") / "static"  # noqa: F405
