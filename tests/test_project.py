"""Project-level behaviour: environment settings, health check, request ids, deploy checks."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from billing_access import env

ROOT = Path(__file__).resolve().parent.parent


def test_database_url_parsing(tmp_path):
    config = env.database_config(
        "postgres://u:p%40ss@db.example:6543/portal?sslmode=require", tmp_path
    )
    assert config["ENGINE"] == "django.db.backends.postgresql"
    assert (config["USER"], config["PASSWORD"], config["HOST"], config["PORT"], config["NAME"]) == (
        "u",
        "p@ss",
        "db.example",
        "6543",
        "portal",
    )
    assert config["OPTIONS"]["sslmode"] == "require"
    assert config["CONN_HEALTH_CHECKS"] is True
    sqlite = env.database_config(None, tmp_path / "db.sqlite3")
    assert sqlite["ENGINE"] == "django.db.backends.sqlite3"
    with pytest.raises(ImproperlyConfigured):
        env.database_config("mysql://x/y", tmp_path)


def test_email_url_parsing():
    smtp = env.email_config("smtp://mailer:secret@mail.example:2525?tls=1")
    assert smtp["BACKEND"].endswith("smtp.EmailBackend")
    assert smtp["OPTIONS"]["host"] == "mail.example"
    assert smtp["OPTIONS"]["port"] == 2525
    assert smtp["OPTIONS"]["use_tls"] is True
    assert env.email_config("console:")["BACKEND"].endswith("console.EmailBackend")
    assert env.email_config(None)["BACKEND"].endswith("console.EmailBackend")
    with pytest.raises(ImproperlyConfigured):
        env.email_config("carrier-pigeon://coop")


def test_cache_url_parsing():
    assert env.cache_config(None)["BACKEND"].endswith("LocMemCache")
    assert env.cache_config("redis://127.0.0.1:6379/1")["BACKEND"].endswith("RedisCache")


def test_bool_parsing(monkeypatch):
    monkeypatch.setenv("X_FLAG", "yes")
    assert env.get_bool("X_FLAG") is True
    monkeypatch.setenv("X_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured):
        env.get_bool("X_FLAG")


def _run_manage(*args, extra_env):
    test_only = {
        "SECRET_KEY",
        "DEBUG",
        "DJANGO_SETTINGS_MODULE",
        "SECURE_SSL_REDIRECT",
        "SECURE_COOKIES",
        "DJANGO_ALLOW_ASYNC_UNSAFE",
    }
    environment = {k: v for k, v in os.environ.items() if k not in test_only}
    environment.update(extra_env)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_refuses_to_start_without_secret_key_in_production():
    result = _run_manage("check", extra_env={"DEBUG": "false"})
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_check_deploy_is_clean_with_production_settings():
    result = _run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        extra_env={
            "DEBUG": "false",
            "SECRET_KEY": "prod-" + "a1b2c3d4e5" * 6,
            "ALLOWED_HOSTS": "access.example.com",
            "CSRF_TRUSTED_ORIGINS": "https://access.example.com",
            "EMAIL_URL": "smtp://mail.example.com:587?tls=1",
            "DATABASE_URL": os.environ.get("DATABASE_URL", ""),
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.django_db
def test_healthz_answers_and_carries_a_request_id(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}  # alive; the database is /readyz's business
    assert len(response.headers["X-Request-ID"]) == 32
    assert client.get("/healthz").headers["X-Request-ID"] != response.headers["X-Request-ID"]


@pytest.mark.django_db
def test_security_headers_on_pages(client):
    response = client.get("/sign-in/")
    csp = response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in csp
    assert "default-src 'none'" in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_every_environment_variable_is_documented():
    import re

    settings_text = (ROOT / "billing_access" / "settings.py").read_text()
    readme = (ROOT / "README.md").read_text()
    names = set(re.findall(r'env\.get_\w+\("([A-Z_]+)"', settings_text))
    assert names, "no environment variables found in settings.py"
    missing = sorted(name for name in names if f"`{name}`" not in readme)
    assert missing == [], f"README.md does not document: {missing}"
