"""The portal as an operator installs it: a wheel holding every app, template and static file,
which runs with `python -m django` (django-admin) away from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from django.conf import settings

pytestmark = [pytest.mark.ops, pytest.mark.xdist_group("ops")]

ROOT = Path(__file__).resolve().parents[2]
LEFT_OUT = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "dist", "*.egg-info", "__pycache__", "node_modules", "tests"
)


def _local_apps() -> list[str]:
    """The apps of INSTALLED_APPS that live in this checkout."""
    return [app for app in settings.INSTALLED_APPS if (ROOT / app / "__init__.py").exists()]


def _packages_in_checkout() -> set[str]:
    found = set()
    for app in _local_apps():
        for init in (ROOT / app).rglob("__init__.py"):
            found.add(".".join(init.parent.relative_to(ROOT).parts))
    return found


def _files_under(folder: str) -> set[str]:
    base = ROOT / folder
    return {
        path.relative_to(base).as_posix()
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Build the wheel as an operator would, from a copy of the checkout (no build/ left here)."""
    work = tmp_path_factory.mktemp("wheel")
    source = work / "src"
    shutil.copytree(ROOT, source, ignore=LEFT_OUT, symlinks=True)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work / "dist"), "."],
        cwd=source,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (built,) = (work / "dist").glob("billing_access-*.whl")
    return built


def test_wheel_holds_every_app_template_and_static_file(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = {
        name.rsplit("/", 1)[0].replace("/", ".") for name in names if name.endswith("/__init__.py")
    }
    assert _local_apps(), "no app of INSTALLED_APPS found in the checkout"
    assert sorted(_packages_in_checkout() - packages) == []
    assert "billing_access" in packages and "portal" in packages
    for folder in ("templates", "static"):
        shipped = {
            name.removeprefix(f"billing_access/{folder}/")
            for name in names
            if name.startswith(f"billing_access/{folder}/")
        }
        assert _files_under(folder) - shipped == set(), f"{folder}/ files missing from the wheel"
    assert not any(name.startswith("tests/") for name in names)


def test_installed_wheel_runs_with_django_admin(wheel, tmp_path):
    """Install the wheel alone (the venv has its dependencies), then check, collect the static
    files and render a page's template from a folder that is not the checkout."""
    target = tmp_path / "site"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PYTEST", "DATABASE_URL", "VAR_DIR", "DEBUG"))
    }
    environment.update(
        PYTHONPATH=str(target),
        DJANGO_SETTINGS_MODULE="billing_access.settings",
        SECRET_KEY="packaging-test-" + "s" * 40,
        FIELD_ENCRYPTION_KEY="dGVzdC1maWVsZC1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=",
        ALLOWED_HOSTS="localhost",
    )
    run_dir = tmp_path / "run"
    run_dir.mkdir()

    def django_admin(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "django", *args],
            cwd=run_dir,
            env=environment,
            capture_output=True,
            text=True,
            timeout=180,
        )

    script = (
        "import billing_access, portal; from django.template.loader import get_template; "
        "from django.conf import settings; "
        "print(billing_access.__file__); print(settings.VAR_DIR); "
        "print(get_template('base.html').origin.name)"
    )
    shell = django_admin("shell", "-c", script)
    assert shell.returncode == 0, shell.stderr
    package_file, var_dir, template = shell.stdout.split()[-3:]
    assert package_file.startswith(str(target)), "the checkout was imported, not the wheel"
    assert template.startswith(str(target))
    assert var_dir == str(run_dir / "var")
    checked = django_admin("check")
    assert checked.returncode == 0, checked.stderr
    collected = django_admin("collectstatic", "--no-input", "-v0")
    assert collected.returncode == 0, collected.stderr
    manifest = run_dir / "var" / "staticfiles" / "staticfiles.json"
    assert "css/portal.css" in manifest.read_text()
