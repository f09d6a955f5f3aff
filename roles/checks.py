"""Start-up checks: every area and level a screen or menu entry names is one of the catalog's.

`portal` declares what views need without importing the catalog (it sits below every app), so
a misspelt area is caught here, by `manage.py check` and at every start, rather than at import.
"""

from __future__ import annotations

from django.core import checks

from portal import navigation
from portal.access import requirement_of, walk_patterns

from . import catalog


def _problem(area: str, level: str | None, where: str) -> checks.Error | None:
    try:
        catalog.validate(area, level)
    except ValueError as exc:
        return checks.Error(f"{where}: {exc}", id="roles.E001")
    return None


@checks.register(checks.Tags.urls)
def check_declared_access(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    """Refuse a view or menu entry that names an area or level the catalog does not have."""
    problems = []
    for route, pattern in walk_patterns():
        requirement = requirement_of(pattern.callback)
        for area, level in requirement.pairs() if requirement else ():
            problems.append(_problem(area, level, f"The view at {route}"))
    for screen in navigation.SCREENS:
        if screen.area is not None:
            problems.append(_problem(screen.area, screen.level, f"The menu entry {screen.label!r}"))
    return [problem for problem in problems if problem is not None]
