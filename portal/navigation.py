"""The portal's menu: each entry is a screen and the catalog level that opens it.

The menu, the home page and the README table all come from this list, and the same
(area, level) pairs guard the views, so a link is shown only where the server would serve it.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.templatetags.static import static
from django.urls import NoReverseMatch, get_script_prefix, get_urlconf, reverse
from django.utils.html import escape

from .access import READ

# Menu links per (script prefix, URLconf): {URL name: path or None}. A link without arguments
# never changes while the process runs, and every page draws the whole menu.
_links: dict[tuple[str, Any], dict[str, str | None]] = {}
# Paths of screens with arguments from a short fixed set, per (script prefix, URLconf).
_paths: dict[tuple[str, Any], dict[tuple, str]] = {}
_shells: dict[tuple[str, Any], dict[str, str | None]] = {}

# What the page shell (base.html) links to on every page: screens, and static files.
SHELL_SCREENS = {
    "home": "home",
    "sign_in": "accounts:sign_in",
    "sign_out": "accounts:sign_out",
    "sso_sign_out": "saml:sign_out",
    "keep_alive": "security:keep_alive",
}
SHELL_ASSETS = {
    "stylesheet": "css/portal.css",
    "icon": "img/favicon.svg",
    "script": "js/portal.js",
    "session_script": "js/session.js",
}


@receiver(setting_changed)
def _forget_links(*, setting, **kwargs):
    if setting in {"ROOT_URLCONF", "STATIC_URL", "STORAGES", "FORCE_SCRIPT_NAME"}:
        _links.clear()
        _paths.clear()
        _shells.clear()


def _current(request=None) -> tuple[str, Any]:
    """Return the script prefix and URLconf that links are worked out for.

    Both are thread locals (asgiref's), each read costing more than the rest of a link lookup;
    with a request they are read once per request and kept on it.
    """
    if request is None:
        return (get_script_prefix(), get_urlconf() or settings.ROOT_URLCONF)
    try:
        return request._portal_links_key
    except AttributeError:
        key = request._portal_links_key = _current()
        return key


def _link_table(key: tuple[str, Any] | None = None) -> dict[str, str | None]:
    key = _current() if key is None else key
    table = _links.get(key)
    if table is None:
        table = _links[key] = {}
    return table


def shell_links(request=None) -> dict[str, str | None]:
    """Return the paths of the screens and static files the page shell links to (once per
    process: `{% url %}` and `{% static %}` on every page cost more than the rest of the shell)."""
    key = _current(request)
    shell = _shells.get(key)
    if shell is None:
        table = _link_table(key)
        paths = {name: link(url_name, table) for name, url_name in SHELL_SCREENS.items()}
        paths |= {name: static(path) for name, path in SHELL_ASSETS.items()}
        # Escaped once here rather than on every page.
        shell = {name: None if path is None else escape(path) for name, path in paths.items()}
        _shells[key] = shell
    return shell


def links_for(request) -> dict[str, str | None]:
    """Return the table of links for `request` to pass to `link()`."""
    return _link_table(_current(request))


def path_for(request, url_name: str, *args) -> str:
    """Return `reverse(url_name, args=args)` for a screen whose arguments come from a short fixed
    set (a tab's slug), worked out once per process and kept with the menu's links."""
    table = _paths.setdefault(_current(request), {})
    key = (url_name, *args)
    try:
        return table[key]
    except KeyError:
        path = table[key] = reverse(url_name, args=args)
        return path


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
    level: str = READ
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
    """A screen as the menu and the home page draw it, its path resolved."""

    url_name: str
    url: str
    label: str
    description: str


Sections = tuple[tuple[str, tuple[MenuEntry, ...]], ...]


@dataclass(frozen=True, slots=True)
class Menu:
    """The sections and screens a person may open, and the path of the one being shown (None
    when the page is not in the menu).

    `token` names the sections: equal sections have the same token, worked out once per
    permissions entry, so that the templates draw each distinct menu once (`{% memo %}`)
    without hashing it on every page.
    """

    sections: Sections = ()
    current: str | None = None
    token: int = 0

    def __iter__(self):
        return iter(self.sections)

    def __len__(self) -> int:
        return len(self.sections)

    @property
    def key(self) -> tuple[int, str | None]:
        return (self.token, self.current)


def menu(permissions, user=None, *, path: str = "", request=None) -> Menu:
    """Return the menu that `permissions` (and `user`) open, with `path` marked as current
    (links for `request`'s URLconf, when given)."""
    sections, urls, token = _sections(permissions, user, _current(request))
    return Menu(sections, path if path in urls else None, token)


# One token per distinct sections tuple (never reused: a cleared table only costs sharing).
_tokens: dict[Sections, int] = {}
_next_token = itertools.count(1)


def _token_of(sections: Sections) -> int:
    token = _tokens.get(sections)
    if token is None:
        if len(_tokens) > 4096:
            _tokens.clear()
        token = _tokens[sections] = next(_next_token)
    return token


def _sections(permissions, user, current: tuple[str, Any]) -> tuple[Sections, frozenset[str], int]:
    """Return the sections of screens `permissions` open, and their paths.

    Worked out once per permissions entry (the per-process cache hands the same entry to every
    request of a user until their permissions change) and per answer of the screens' extra
    conditions, then reused.
    """
    permissions = permissions.has.__self__  # the entry behind the request's lazy object
    conditions = tuple(
        user is not None and screen.visible_to(user)
        for screen in SCREENS
        if screen.visible_to is not None
    )
    # Screens are only ever added, so their number tells a menu worked out before one was.
    key = (len(SCREENS), conditions, current)
    memo = _memo_of(permissions)
    found = memo.get(key)
    if found is not None:
        return found
    table = _link_table(current)
    sections = []
    for section in SECTIONS:
        items = []
        for screen in SCREENS:
            if screen.section != section or not screen.allowed(permissions, user):
                continue
            url = link(screen.url_name, table)
            if url:
                items.append(MenuEntry(screen.url_name, url, screen.label, screen.description))
        if items:
            sections.append((section, tuple(items)))
    urls = frozenset(entry.url for _, items in sections for entry in items)
    found = (tuple(sections), urls, _token_of(tuple(sections)))
    memo[key] = found
    return found


# Menus per permissions entry: {id(entry): (weak reference to the entry, {key: sections})}. The
# weak reference drops the menus with the entry, and tells a reused id from the entry itself.
_memos: dict[int, tuple[weakref.ref, dict]] = {}


def _memo_of(permissions) -> dict:
    ident = id(permissions)
    held = _memos.get(ident)
    if held is not None and held[0]() is permissions:
        return held[1]
    memo: dict = {}

    def forget(_reference, ident=ident):
        _memos.pop(ident, None)

    _memos[ident] = (weakref.ref(permissions, forget), memo)
    return memo


def menu_for(request) -> Menu:
    """Return `menu()` for the signed-in person of `request`, worked out once per request."""
    try:
        return request._portal_menu
    except AttributeError:
        pass
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or not hasattr(request, "permissions"):
        found = Menu()
    else:
        found = menu(request.permissions, user, path=request.path, request=request)
    request._portal_menu = found
    return found
