"""The portal's menu: each entry is a screen and the catalog level that opens it.

The menu, the home page and the README table all come from this list, and the same
(area, level) pairs guard the views, so a link is shown only where the server would serve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse

from . import catalog


@dataclass(frozen=True)
class Screen:
    url_name: str
    label: str
    section: str
    area: str | None
    level: str = catalog.READ
    description: str = ""
    # An extra condition on the person (e.g. "holds an API flag"); None means no condition.
    visible_to: Callable[[Any], bool] | None = None

    @property
    def url(self) -> str | None:
        try:
            return reverse(self.url_name)
        except NoReverseMatch:
            return None

    def allowed(self, permissions, user=None) -> bool:
        if self.visible_to is not None and (user is None or not self.visible_to(user)):
            return False
        return self.area is None or permissions.has(self.area, self.level)


SCREENS: list[Screen] = [
    Screen("home", "Home", "You", None, description="Your account and the screens you may open."),
    Screen(
        "roles:my_access",
        "My access",
        "You",
        None,
        description="Your effective permissions and why.",
    ),
]

SECTIONS = ["You", "People", "Access", "Activity", "Governance", "Settings"]


def register(*screens: Screen) -> None:
    """Add screens to the menu (called from each app's urls module)."""
    for screen in screens:
        if screen.url_name not in {s.url_name for s in SCREENS}:
            SCREENS.append(screen)


def menu(permissions, user=None) -> list[tuple[str, list[Screen]]]:
    """Return the sections and the screens in them that `permissions` (and `user`) open."""
    sections = []
    for section in SECTIONS:
        items = [
            s for s in SCREENS if s.section == section and s.allowed(permissions, user) and s.url
        ]
        if items:
            sections.append((section, items))
    return sections
