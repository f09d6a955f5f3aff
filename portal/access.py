"""Declare what each view needs; the permission middleware refuses views that declare nothing.

Function views use `@requires(area, level)`, `@signed_in` or `@public`; class views inherit
`PermissionRequiredMixin` and set `permission = (area, level)` (and optionally
`write_permission` for POST and other unsafe methods), or `public = True` / `signed_in_only = True`.
"""

from __future__ import annotations

from dataclasses import dataclass

# The level a screen needs when it names none. Levels and areas are the catalog's (roles.catalog);
# portal sits below every app, so `roles.checks` validates each declared requirement at start-up.
READ = "read"


@dataclass(frozen=True)
class Requirement:
    """What a view needs: nothing (public), a session, or a level on an area."""

    public: bool = False
    area: str | None = None
    level: str | None = None
    write_area: str | None = None
    write_level: str | None = None

    def for_method(self, method: str) -> tuple[str | None, str | None]:
        if method not in {"GET", "HEAD", "OPTIONS"} and self.write_area:
            return self.write_area, self.write_level
        return self.area, self.level

    def pairs(self) -> list[tuple[str, str | None]]:
        """Return the (area, level) pairs this requirement names."""
        return [
            (area, level)
            for area, level in ((self.area, self.level), (self.write_area, self.write_level))
            if area is not None
        ]


PUBLIC = Requirement(public=True)
SIGNED_IN = Requirement()
ATTRIBUTE = "access_requirement"


def public(view):
    """Mark a view as open to anonymous visitors (sign-in pages, health checks)."""
    setattr(view, ATTRIBUTE, PUBLIC)
    return view


def signed_in(view):
    """Mark a view as open to any signed-in person (home, "My access")."""
    setattr(view, ATTRIBUTE, SIGNED_IN)
    return view


def requires(area: str, level: str = READ, *, write: str | None = None):
    """Require `level` on `area`; with `write`, unsafe methods need that level instead."""
    requirement = Requirement(
        area=area, level=level, write_area=area if write else None, write_level=write
    )

    def decorate(view):
        setattr(view, ATTRIBUTE, requirement)
        return view

    return decorate


class PermissionRequiredMixin:
    """Class-view declaration: set `permission`, or `public` / `signed_in_only`."""

    permission: tuple[str, str] | None = None
    write_permission: tuple[str, str] | None = None
    public: bool = False
    signed_in_only: bool = False

    @classmethod
    def access_requirement(cls) -> Requirement | None:
        if cls.public:
            return PUBLIC
        if cls.permission:
            write = cls.write_permission or (None, None)
            return Requirement(
                area=cls.permission[0],
                level=cls.permission[1],
                write_area=write[0],
                write_level=write[1],
            )
        if cls.signed_in_only:
            return SIGNED_IN
        return None


def requirement_of(view_func) -> Requirement | None:
    """Return the declared requirement of a resolved view callable, or None when undeclared."""
    requirement = getattr(view_func, ATTRIBUTE, None)
    if isinstance(requirement, Requirement):
        return requirement
    view_class = getattr(view_func, "view_class", None)
    if view_class is not None and hasattr(view_class, "access_requirement"):
        method = view_class.access_requirement
        if callable(method):
            return method()
    return None


def walk_patterns(patterns=None, prefix: str = ""):
    """Yield (route, URLPattern) for every view the URLconf (or `patterns`) routes to."""
    from django.urls import URLPattern, URLResolver, get_resolver

    for pattern in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(pattern, URLResolver):
            yield from walk_patterns(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield "/" + prefix + str(pattern.pattern), pattern
