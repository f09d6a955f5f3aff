"""Test settings: the product's settings with a fast hasher, local cache and in-memory mail."""

import hashlib
import os
from pathlib import Path

# Without DATABASE_URL, a database named after this checkout (as bin/with-postgres names it), so
# that two checkouts' suites on one server never share one: pytest-django works in test_<name>.
_checkout = str(Path(__file__).resolve().parent.parent).encode()
_default_db = "billing_access_" + hashlib.sha1(_checkout).hexdigest()[:8]

os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "k" * 40)
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
os.environ.setdefault("FIELD_ENCRYPTION_KEY", "dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=")
os.environ.setdefault("DATABASE_URL", f"postgres://postgres@127.0.0.1:5432/{_default_db}")

from billing_access.settings import *  # noqa: E402, F403

ALLOWED_HOSTS = ["testserver", "127.0.0.1", "localhost"]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
MAILERS = {"default": {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}}
CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}  # noqa: F405
WHITENOISE_AUTOREFRESH = True
WHITENOISE_USE_FINDERS = True

# Every request that changes access data must write an audit event (tests/audit_guard.py).
MIDDLEWARE = ["tests.audit_guard.AuditGuardMiddleware", *MIDDLEWARE]  # noqa: F405
