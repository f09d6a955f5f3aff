"""Extension points of the user record, for other apps (two-factor, lockout, tokens, recovery).

- `register_action(RecordAction(...))` adds an entry to the record's Actions menu, shown only when
  the signed-in person holds the action's level and, for `manages=True`, may manage that user.
- `register_security_panel(SecurityPanel(...))` adds a section to the Security tab: a template
  rendered with the context its function returns (None hides the panel).

Call them from your app's `urls.py` (loaded at start-up), as the menu's `navigation.register` is.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

from roles import catalog


@dataclass(frozen=True)
class RecordAction:
    """An entry of the Actions menu: a URL taking the user's pk, guarded by an area and level."""

    url_name: str
    label: str
    area: str
    level: str = catalog.FULL
    manages: bool = True
    applies: Callable[[Any], bool] = lambda subject: True


@dataclass(frozen=True)
class SecurityPanel:
    """A section of the Security tab, guarded by an area and level."""

    name: str
    template_name: str
    area: str
    level: str = catalog.READ
    context: Callable[[Any, Any], dict | None] = lambda request, subject: {}


ACTIONS: list[RecordAction] = []
SECURITY_PANELS: list[SecurityPanel] = []


def register_action(action: RecordAction) -> None:
    if action.url_name not in {a.url_name for a in ACTIONS}:
        ACTIONS.append(action)


def register_security_panel(panel: SecurityPanel) -> None:
    if panel.name not in {p.name for p in SECURITY_PANELS}:
        SECURITY_PANELS.append(panel)


def actions_for(request, subject, *, may_manage: bool) -> list[tuple[str, str]]:
    """Return (label, url) of the registered actions this person may take on `subject`."""
    allowed = []
    for action in ACTIONS:
        if not request.permissions.has(action.area, action.level):
            continue
        if action.manages and not may_manage:
            continue
        if not action.applies(subject):
            continue
        try:
            allowed.append((action.label, reverse(action.url_name, args=[subject.pk])))
        except NoReverseMatch:
            continue
    return allowed


def panels_for(request, subject) -> list[tuple[str, dict]]:
    """Return (template name, context) of the registered Security tab panels to show."""
    shown = []
    for panel in SECURITY_PANELS:
        if not request.permissions.has(panel.area, panel.level):
            continue
        context = panel.context(request, subject)
        if context is not None:
            shown.append((panel.template_name, {"subject": subject, **context}))
    return shown
