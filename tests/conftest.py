"""Shared fixtures: owners and users, a signed-in client, and headless Chromium for e2e tests."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests import builders

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "var" / "screenshots"


@pytest.fixture(autouse=True)
def _audit_guard():
    """Fail a test whose requests changed access data without writing an audit event."""
    from tests import audit_guard

    audit_guard.connect()
    audit_guard.violations.clear()
    yield
    found = list(audit_guard.violations)
    audit_guard.violations.clear()
    assert found == [], "Access data changed without evidence:\n" + "\n".join(found)


@pytest.fixture(autouse=True)
def _fresh_permission_caches():
    """Start every test with empty permission caches (shared and per-process)."""
    from django.core.cache import cache

    from roles import permissions

    cache.clear()
    permissions.local_entries.clear()


@pytest.fixture
def owner(db):
    return builders.make_owner("Acme Test")


@pytest.fixture
def admin_user(owner):
    """A user who holds every application area at its top level."""
    from roles import catalog

    return builders.make_user(
        owner,
        username="admin",
        grants={a.code: a.top for a in catalog.areas_for("application")},
        privilege_level=10,
        expert_level=3,
    )


@pytest.fixture
def signed_in(client):
    """Return a function that signs a user in on the test client (force_login) and the client."""

    def sign_in(user):
        client.force_login(user, backend="accounts.backends.PortalBackend")
        return client

    return sign_in


@pytest.fixture
def screenshot_dir():
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS


# Browser tests: Debian's Chromium through Playwright (never a downloaded browser).
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    return {
        **browser_type_launch_args,
        "executable_path": CHROMIUM,
        "args": [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ],
    }


@pytest.fixture(scope="session", autouse=True)
def _allow_async_unsafe():
    # Playwright runs an event loop in the test thread; Django's ORM calls from the test are safe.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
