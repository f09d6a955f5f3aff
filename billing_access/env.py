"""Read typed settings from the environment, in one place.

Every setting of the portal comes from an environment variable; this module turns the raw strings
into Python values and says clearly which variable is wrong when one is.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

from django.core.exceptions import ImproperlyConfigured

TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


def get_str(name: str, default: str | None = None) -> str | None:
    """Return the variable as a string, or `default` when it is unset."""
    return os.environ.get(name, default)


def get_bool(name: str, default: bool = False) -> bool:
    """Return the variable as a boolean (1/true/yes/on or 0/false/no/off)."""
    raw = os.environ.get(name)
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def get_int(name: str, default: int) -> int:
    """Return the variable as an integer."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from exc


def get_list(name: str, default: list[str] | None = None) -> list[str]:
    """Return a comma-separated variable as a list of stripped, non-empty strings."""
    raw = os.environ.get(name)
    if raw is None:
        return list(default or [])
    return [item.strip() for item in raw.split(",") if item.strip()]


def database_config(url: str | None, sqlite_path: Path) -> dict:
    """Translate `DATABASE_URL` into a Django DATABASES entry (SQLite file when unset)."""
    if not url:
        sqlite_path.parent.mkdir(parents=True, exist_ok=True)  # the embedded default just works
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(sqlite_path),
            "OPTIONS": {
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL;",
            },
        }
    parsed = urlparse(url)
    if parsed.scheme in {"postgres", "postgresql", "pgsql"}:
        query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        # PostgreSQL's JIT compiler costs seconds on the portal's short reporting queries (who
        # has access, impact previews) and saves nothing on its OLTP ones: switch it off.
        options: dict = {"options": "-c jit=off"}
        if "sslmode" in query:
            options["sslmode"] = query["sslmode"]
        if query.get("pool", "").lower() in TRUE_WORDS:
            options["pool"] = True
        # A database that does not answer fails the request in seconds (the 503 page), rather
        # than holding a worker for the operating system's TCP timeout.
        options["connect_timeout"] = int(query.get("connect_timeout", 5))
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parsed.path.lstrip("/")) or "postgres",
            "USER": unquote(parsed.username or ""),
            "PASSWORD": unquote(parsed.password or ""),
            "HOST": parsed.hostname or "",
            "PORT": str(parsed.port or ""),
            "CONN_MAX_AGE": 0 if options.get("pool") else int(query.get("conn_max_age", 60)),
            "CONN_HEALTH_CHECKS": True,
            "OPTIONS": options,
        }
    if parsed.scheme == "sqlite":
        path = unquote(parsed.path)
        if path.startswith("//"):
            path = path[1:]
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": (path.lstrip("/") and path) or ":memory:",
        }
    raise ImproperlyConfigured(
        f"DATABASE_URL scheme {parsed.scheme!r} is not supported; use postgres:// or sqlite://."
    )


def cache_config(url: str | None) -> dict:
    """Translate `CACHE_URL` into a Django CACHES entry (local memory when unset)."""
    if not url or url.startswith("locmem:"):
        return {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "billing-access",
        }
    parsed = urlparse(url)
    if parsed.scheme in {"redis", "rediss"}:
        # Redis away costs speed, never a page: ops.cache answers from local memory meanwhile,
        # and a Redis that does not answer is given up on after half a second.
        return {
            "BACKEND": "ops.cache.FallbackRedisCache",
            "LOCATION": url,
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        }
    if parsed.scheme == "dummy":
        return {"BACKEND": "django.core.cache.backends.dummy.DummyCache"}
    raise ImproperlyConfigured(
        f"CACHE_URL scheme {parsed.scheme!r} is not supported; use redis://, locmem: or dummy:."
    )


def email_config(url: str | None) -> dict:
    """Translate `EMAIL_URL` into the `default` entry of Django's MAILERS setting.

    `smtp://user:password@host:port` (add `?tls=1` for STARTTLS), `smtps://…` (implicit TLS),
    `console:` (print to stdout, development only), `memory:` (tests) and `file:///path`.
    """
    if not url or url.startswith("console:"):
        return {"BACKEND": "django.core.mail.backends.console.EmailBackend"}
    if url.startswith("memory:") or url.startswith("locmem:"):
        return {"BACKEND": "django.core.mail.backends.locmem.EmailBackend"}
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return {
            "BACKEND": "django.core.mail.backends.filebased.EmailBackend",
            "OPTIONS": {"file_path": unquote(parsed.path)},
        }
    if parsed.scheme in {"smtp", "smtps"}:
        query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
        return {
            "BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "OPTIONS": {
                "host": parsed.hostname or "localhost",
                "port": parsed.port or (465 if parsed.scheme == "smtps" else 25),
                "username": unquote(parsed.username or ""),
                "password": unquote(parsed.password or ""),
                "use_ssl": parsed.scheme == "smtps",
                "use_tls": query.get("tls", "").lower() in TRUE_WORDS,
                "timeout": int(query.get("timeout", 10)),
            },
        }
    raise ImproperlyConfigured(
        f"EMAIL_URL scheme {parsed.scheme!r} is not supported; "
        "use smtp://, smtps://, console:, memory: or file://."
    )


def webauthn_relying_party(public_url: str) -> tuple[str, str]:
    """Return the WebAuthn RP ID and origin of the address people use (`PUBLIC_URL`).

    WebAuthn accepts a domain name only, never an IP address: an address on an IP (such as
    `http://127.0.0.1:8000`) gives `localhost` on the same scheme and port.
    """
    parsed = urlparse(public_url)
    host = parsed.hostname or "localhost"
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        host = "localhost"
    port = f":{parsed.port}" if parsed.port else ""
    return host, f"{parsed.scheme or 'https'}://{host}{port}"
