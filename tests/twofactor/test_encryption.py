"""Secrets at rest: the encryption key comes from the environment and can be rotated."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured

from portal import encryption
from tests.builders import make_totp_device, make_user

ROOT = Path(__file__).resolve().parent.parent.parent


def run_check(**extra):
    environment = {
        k: v
        for k, v in os.environ.items()
        if k not in {"DJANGO_SETTINGS_MODULE", "DEBUG", "FIELD_ENCRYPTION_KEY"}
    }
    environment.update(extra)
    return subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_production_refuses_to_start_without_the_key():
    result = run_check(DEBUG="false")
    assert result.returncode != 0
    assert "FIELD_ENCRYPTION_KEY is not set" in result.stderr


def test_a_malformed_key_is_refused():
    result = run_check(DEBUG="false", FIELD_ENCRYPTION_KEY="too-short")
    assert result.returncode != 0
    assert "urlsafe base64 of 32 bytes" in result.stderr


@pytest.mark.django_db
def test_rotation_keeps_old_rows_readable(settings, owner):
    old_key = settings.FIELD_ENCRYPTION_KEY
    device, _ = make_totp_device(make_user(owner))
    secret = device.base32_secret
    settings.FIELD_ENCRYPTION_KEY = f"{Fernet.generate_key().decode()},{old_key}"
    device.refresh_from_db()
    assert device.base32_secret == secret
    settings.FIELD_ENCRYPTION_KEY = Fernet.generate_key().decode()
    with pytest.raises(ImproperlyConfigured):
        encryption.decrypt(device.encrypted_key)
