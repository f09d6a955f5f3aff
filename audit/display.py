"""Turn stored events into what people read: diffs with field labels, devices, places, 2FA."""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.utils.text import capfirst

from . import geo
from .choices import AuditAction

EMPTY = "—"

SECOND_FACTORS = {
    "totp": "Authenticator app",
    "backup_code": "Backup code",
    "recovery_code": "Recovery code",
    "webauthn": "Security key",
    "passkey": "Passkey",
    "saml": "At the identity provider",
}
METHODS = {
    "password": "Password",
    "password+totp": "Password and authenticator app",
    "password+backup_code": "Password and backup code",
    "password+passkey": "Password and passkey",
    "passkey": "Passkey",
    "saml": "Single sign-on",
    "sso": "Single sign-on",
    "token": "API token",
    "recovery": "Recovery code",
    "access_email": "Access email link",
}


@dataclass(frozen=True)
class Change:
    field: str
    label: str
    before: str
    after: str


@functools.cache
def _labels_of(model_name: str) -> dict[str, str]:
    for model in apps.get_models():
        if model._meta.model_name == model_name:
            labels = {}
            for f in model._meta.get_fields():
                name = getattr(f, "verbose_name", None) or f.name.replace("_", " ")
                labels[f.name] = capfirst(str(name))
                if getattr(f, "attname", None):
                    labels.setdefault(f.attname, capfirst(str(name)))
            return labels
    return {}


def field_label(target_type: str, field_name: str) -> str:
    """Return the label people know a field by ("Login" for allow_login on a user)."""
    return _labels_of(target_type or "").get(field_name) or capfirst(field_name.replace("_", " "))


def format_value(value: Any) -> str:
    """Return one stored before/after value as text."""
    if value is None or value == "" or value == []:
        return EMPTY
    if value is True:
        return "Yes"
    if value is False:
        return "No"
    if isinstance(value, list | tuple):
        return ", ".join(format_value(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {format_value(v)}" for k, v in sorted(value.items()))
    return str(value)


def changes_of(event) -> list[Change]:
    """Return the event's changes as readable before → after rows, in field order."""
    rows = []
    for name, pair in sorted((event.changes or {}).items()):
        if isinstance(pair, list | tuple) and len(pair) == 2:
            before, after = pair
        else:
            before, after = None, pair
        rows.append(
            Change(
                name,
                field_label(event.target_type, name),
                format_value(before),
                format_value(after),
            )
        )
    return rows


_BROWSERS = [
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"(?:OPR|Opera)/(\d+)")),
    ("Samsung Internet", re.compile(r"SamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")),
    ("curl", re.compile(r"^curl/(\d+)")),
    ("Python", re.compile(r"python-requests/(\d+)|python-httpx/(\d+)|Python-urllib/(\d+)")),
]
_SYSTEMS = [
    ("iPhone", re.compile(r"iPhone")),
    ("iPad", re.compile(r"iPad")),
    ("Android", re.compile(r"Android")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Mac OS X|Macintosh")),
    ("ChromeOS", re.compile(r"CrOS")),
    ("Linux", re.compile(r"Linux|X11")),
]


@functools.lru_cache(maxsize=2048)
def summarise_user_agent(user_agent: str) -> str:
    """Return "Firefox 132 on Windows" from a User-Agent header ("Unknown device" when unsure)."""
    if not user_agent:
        return EMPTY
    browser = ""
    for name, pattern in _BROWSERS:
        match = pattern.search(user_agent)
        if match:
            version = next((g for g in match.groups() if g), "")
            browser = f"{name} {version}".strip()
            break
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), "")
    if browser and system:
        return f"{browser} on {system}"
    return browser or system or "Unknown device"


def second_factor_of(event) -> str:
    """Return how the second factor was proven at a sign-in ("No" when none was asked)."""
    if event.action != AuditAction.SIGN_IN:
        return EMPTY
    factor = (event.context or {}).get("second_factor") or ""
    if not factor:
        return "No"
    return SECOND_FACTORS.get(factor, capfirst(str(factor).replace("_", " ")))


def method_of(event) -> str:
    if not event.method:
        return EMPTY
    return METHODS.get(event.method, capfirst(event.method.replace("_", " ")))


def decorate(events):
    """Attach what the screens show (place, device, 2FA, method, diff) to each event."""
    for event in events:
        event.location = geo.locate(event.ip) if event.ip else EMPTY
        event.device = summarise_user_agent(event.user_agent or "")
        event.second_factor = second_factor_of(event)
        event.method_label = method_of(event)
        event.diff = changes_of(event)
        event.failure_reason = event.reason or (event.context or {}).get("reason", "")
        event.subject_label = subject_label(event)
    return events


def subject_label(event) -> str:
    """Return the name of the user an event is about, from the labels the event copied."""
    if event.subject_user_id is None:
        return EMPTY
    if event.target_type == "user" and event.target_id == str(event.subject_user_id):
        return event.target_label
    if event.actor_id == event.subject_user_id and event.actor_label:
        return event.actor_label
    return f"User {event.subject_user_id}"
