"""The portal's menu: each entry is a screen and the catalog level that opens it.

The menu, the home page and the README table all come from this list, and the same
(area, level) pairs guard the views, so a link is shown only where the server would serve it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse

from . import catalog

# Menu links per (script prefix, URLconf): {URL name: path or None}. A link without arguments
# never changes while the process runs, and every page draws the whole menu.
_links: dict[tuple[str, Any], dict[str, str | None]] = {}


@receiver(setting_changed)
def _forget_links(*, setting, **kwargs):
    if setting == "ROOT_URLCONF":
        _links.clear()


def _link_table() -> dict[str, str | None]:
    key = (get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    table = _links.get(key)
    if table is None:
        table = _links[key] = {}
    return table


def link(url_name: str, table: dict[str, str | None] | None = None) -> str | None:
    """Return the path of a screen without arguments (None when this build has no such view)."""
    table = _link_table() if table is None else table
    try:
        return table[url_name]
    except KeyError:
        pass
    try:
        path = reverse(url_name)
    except NoReverseMatch:
        path = None
    table[url_name] = path
    return path


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
        return link(self.url_name)

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


@dataclass(frozen=True, slots=True)
class MenuEntry:
    """A screen as the menu and the home page draw it: its path resolved, and whether it is the
    page being shown."""

    url_name: str
    url: str
    label: str
    description: str
    current: bool = False


Menu = tuple[tuple[str, tuple[MenuEntry, ...]], ...]


def menu(permissions, user=None, *, path: str = "") -> Menu:
    """Return the sections and the screens in them that `permissions` (and `user`) open.

    The result is a tuple of tuples of frozen entries: equal menus are equal keys, so that the
    templates draw each distinct menu once (`{% memo %}`).
    """
    table = _link_table()
    sections = []
    for section in SECTIONS:
        items = []
        for screen in SCREENS:
            if screen.section != section or not screen.allowed(permissions, user):
                continue
            url = link(screen.url_name, table)
            if url:
                items.append(
                    MenuEntry(screen.url_name, url, screen.label, screen.description, url == path)
                )
        if items:
            sections.append((section, tuple(items)))
    return tuple(sections)


def menu_for(request) -> Menu:
    """Return `menu()` for the signed-in person of `request`, worked out once per request."""
    try:
        return request._portal_menu
    except AttributeError:
        pass
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "permissions"):
        sections: Menu = ()
    else:
        sections = menu(request.permissions, user, path=request.path)
    request._portal_menu = sections
    return sections
