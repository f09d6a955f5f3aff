"""The image and the compose stack, checked without a Docker engine (`make lint` runs this file
and hadolint): the Dockerfile's stages and promises, and docker-compose.yml parsed and held
against the settings it feeds."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

ROOT = Path(__file__).resolve().parents[2]
HADOLINT = Path(sys.executable).parent / "hadolint"
READ_BY_SETTINGS = re.compile(r'env\.get_\w+\("([A-Z_]+)"')
# Variables read outside settings.py: gunicorn.conf.py's, and those of Django and libraries.
ALSO_READ = {"DJANGO_SETTINGS_MODULE", "PROMETHEUS_MULTIPROC_DIR"}


def _variables_read() -> set[str]:
    names = set(READ_BY_SETTINGS.findall((ROOT / "billing_access" / "settings.py").read_text()))
    names |= set(READ_BY_SETTINGS.findall((ROOT / "gunicorn.conf.py").read_text()))
    return names | ALSO_READ


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _portal_services(compose: dict) -> dict[str, dict]:
    """The services that run the portal's code: those of the image the app service builds."""
    services = compose["services"]
    image = services["app"]["image"]
    return {name: service for name, service in services.items() if service.get("image") == image}


def _environment(service: dict) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.split("=", 1) for item in environment)
    return {key: str(value) for key, value in environment.items()}


def test_dockerfile_builds_from_the_lock_into_a_slim_non_root_runtime(dockerfile):
    stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\w+))?", dockerfile, re.MULTILINE)
    assert [name for _, name in stages] == ["builder", "runtime"]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.12-slim\b", dockerfile, re.MULTILINE)
    assert "--require-hashes -r requirements.txt" in dockerfile
    assert "pip wheel --no-deps" in dockerfile
    runtime = dockerfile.split("AS runtime", 1)[1]
    assert "xmlsec1" in runtime
    assert "collectstatic" in runtime
    assert "COPY --from=builder /venv /venv" in runtime
    (user,) = re.findall(r"^USER\s+(\S+)", runtime, re.MULTILINE)
    assert user.split(":")[0] not in {"0", "root"}
    assert re.search(r"^HEALTHCHECK .*\n?.*/healthz", runtime, re.MULTILINE)
    assert re.search(r'^CMD \["gunicorn", "billing_access.wsgi"\]', runtime, re.MULTILINE)
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var", "tests"} <= set(ignored)


def test_hadolint_passes():
    assert HADOLINT.exists(), "hadolint comes with the dev lock (requirements-dev.txt): make venv"
    result = subprocess.run(
        [str(HADOLINT), str(ROOT / "Dockerfile")], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_runs_the_image_with_its_services(compose):
    services = compose["services"]
    assert {"app", "db", "redis", "mail"} <= set(services)
    app = services["app"]
    assert app["build"] in (".", {"context": "."})
    portal = _portal_services(compose)
    if "delivery" in settings.INSTALLED_APPS:
        assert "worker" in portal, "the outbox worker must run from the portal's image"
        assert "deliver" in str(portal["worker"]["command"])
    for name, service in portal.items():
        command = str(service.get("command", ""))
        assert "pip install" not in command, f"{name} installs at start; the image has it"
        assert not any(str(v).startswith(".:") for v in service.get("volumes", [])), name
    for name in ("app", "db", "redis"):
        assert services[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"
    assert "/healthz" in str(app["healthcheck"]["test"])
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert services["mail"]["image"].startswith("axllent/mailpit")


def test_compose_environment_matches_the_settings(compose):
    read = _variables_read()
    services = compose["services"]
    for name, service in _portal_services(compose).items():
        environment = _environment(service)
        unknown = sorted(set(environment) - read)
        assert unknown == [], f"{name} sets variables nothing reads: {unknown}"
        for required in ("SECRET_KEY", "FIELD_ENCRYPTION_KEY", "DATABASE_URL"):
            assert environment.get(required), f"{name} lacks {required}"
        assert "@db:5432/" in environment["DATABASE_URL"]
        if "EMAIL_URL" in environment:
            assert "//mail:" in environment["EMAIL_URL"]
    app = _environment(services["app"])
    assert app["CACHE_URL"].startswith("redis://redis:6379/")
    assert "localhost" in app["ALLOWED_HOSTS"].split(",")
