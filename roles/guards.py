"""No escalation, and nothing of another owner: the checks every write path makes.

- Nobody grants a level they do not hold themselves (role groups, roles, overrides, tokens).
- Nobody edits a user of higher privilege level, or raises anyone above their own.
- The last active user able to administer users in an owner cannot lose that ability.
- Another owner's objects answer 404.
Platform superusers are the only exception to the first three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied
from django.http import Http404

from . import catalog, permissions


class EscalationRefused(PermissionDenied):
    """A change would give someone more than the actor holds; the message says what.

    A refusal over many areas names the few nearest ones; `shortfalls` holds every one of them
    (for a screen's expandable detail or an API's error details).
    """

    def __init__(self, message: str = "", *, shortfalls: Iterable[Shortfall] = ()):
        super().__init__(message)
        self.shortfalls: list[Shortfall] = list(shortfalls)

    @property
    def names_only_some(self) -> bool:
        """Say whether the message names only a few of the areas refused (see `summarise`)."""
        return len(self.shortfalls) > SHOWN_SHORTFALLS + 1

    @property
    def details(self) -> list[str]:
        """Return every area refused, as text ("Tariffs (full; you hold read)")."""
        return [str(s) for s in self.shortfalls]


@dataclass(frozen=True)
class Shortfall:
    """One area a grant asks more of than the actor holds."""

    area: catalog.Area
    level: str
    held: str

    def __str__(self) -> str:
        return f"{self.label} ({self.level}; you hold {self.held})"

    @property
    def label(self) -> str:
        """Return the area's name, "API …" for an API area (Customers exists in both)."""
        api = self.area.channel == catalog.Channel.API
        return f"API {self.area.label}" if api else self.area.label

    @property
    def needs(self) -> str:
        """Return what a screen says an option needs ("Tariffs full")."""
        return f"{self.label} {self.level}"


SHOWN_SHORTFALLS = 3
_CATALOG_ORDER = {area.code: n for n, area in enumerate(catalog.AREAS)}


def summarise(shortfalls: Sequence[Shortfall], *, shown: int = SHOWN_SHORTFALLS) -> str:
    """Return the few areas that matter and how many more ("A, B, C and 97 more areas")."""
    texts = [str(s) for s in shortfalls]
    if len(texts) > shown + 1:
        rest = len(texts) - shown
        return f"{', '.join(texts[:shown])} and {rest} more areas"
    if len(texts) > 1:
        return f"{', '.join(texts[:-1])} and {texts[-1]}"
    return texts[0] if texts else ""


def held(actor, channel: str = catalog.Channel.APPLICATION):
    """Return the actor's own effective permissions in `channel` (API areas: the API channel)."""
    return permissions.for_user(actor, channel)


def shortfalls(actor, levels: Mapping[str, str]) -> list[Shortfall]:
    """Return each `{area: level}` above what the actor holds, the nearest misses first.

    Nearest: areas where the actor holds something (but less) before areas they hold nothing
    of, each group in catalog order; that is what a refusal names first.
    """
    if actor.is_superuser:
        return []
    found = []
    for code, level in levels.items():
        area = catalog.validate(code, level)
        if level == catalog.NONE:
            continue
        mine = _held_level(actor, area)
        if area.rank(level) > area.rank(mine):
            found.append(Shortfall(area, level, mine))
    found.sort(key=lambda s: (s.held == catalog.NONE, _CATALOG_ORDER.get(s.area.code, 0)))
    return found


def check_can_grant(actor, levels: Mapping[str, str]) -> None:
    """Refuse when any `{area: level}` exceeds what the actor holds in that area's channel."""
    missing = shortfalls(actor, levels)
    if missing:
        raise EscalationRefused(
            f"You cannot grant what you do not hold: {summarise(missing)}.", shortfalls=missing
        )


def _held_level(actor, area: catalog.Area) -> str:
    """Return the level the actor holds on `area`, for the purpose of granting it.

    For an API area that is the highest API level whose application counterpart the actor holds
    (see `catalog.API_EQUIVALENT`), or the API level the actor holds directly, whichever is higher.
    """
    if area.channel != catalog.Channel.API:
        return permissions.for_user(actor).level(area.code)
    app = permissions.for_user(actor)
    best = permissions.for_user(actor, catalog.Channel.API).level(area.code)
    for level in area.levels:
        app_code, needed = catalog.application_equivalent(area.code, level)
        if app.has(app_code, needed) and area.rank(level) > area.rank(best):
            best = level
    return best


def _combine(rows: Iterable[tuple[str, str]], into: dict[str, str]) -> dict[str, str]:
    """Fold (area, level) rows into `{area: highest level}` (unknown areas and levels skipped)."""
    for code, level in rows:
        area = catalog.BY_CODE.get(code)
        if area is None or not area.is_level(level):
            continue
        if code not in into or area.rank(level) > area.rank(into[code]):
            into[code] = level
    return into


def check_can_grant_groups(actor, groups: Iterable) -> None:
    """Refuse handing out role groups whose grants exceed what the actor holds."""
    if actor.is_superuser:
        return
    from .models import Grant

    combined: dict[str, str] = {}
    names: dict[str, set[str]] = {}
    # One query whatever the number of groups (a queryset of groups becomes a subquery).
    rows = Grant.objects.filter(role_group__in=groups).values_list(
        "role_group__name", "area", "level"
    )
    for name, code, level in rows:
        _combine([(code, level)], combined)
        names.setdefault(code, set()).add(name)
    missing = shortfalls(actor, combined)
    if missing:
        culprits = sorted({name for s in missing for name in names.get(s.area.code, ())})
        what = (
            f"the role group {culprits[0]}, which gives"
            if len(culprits) == 1
            else f"the role groups {_and(culprits)}, which give"
        )
        raise EscalationRefused(
            f"You cannot grant {what} what you do not hold: {summarise(missing)}.",
            shortfalls=missing,
        )


def grant_shortfalls(actor, owner) -> tuple[dict[int, list[Shortfall]], dict[int, list[Shortfall]]]:
    """Return what the actor lacks to hand out each of the owner's role groups and roles.

    Two dicts, role group id -> shortfalls and role id -> shortfalls (empty lists omitted), in
    two queries whatever the number of roles and groups: the user form offers only what the
    writer would accept.
    """
    if actor.is_superuser:
        return {}, {}
    from .models import Grant, Role

    by_group: dict[int, dict[str, str]] = {}
    for group_id, code, level in Grant.objects.filter(role_group__owner=owner).values_list(
        "role_group_id", "area", "level"
    ):
        _combine([(code, level)], by_group.setdefault(group_id, {}))
    groups = {pk: shortfalls(actor, levels) for pk, levels in by_group.items()}
    by_role: dict[int, dict[str, str]] = {}
    for role_id, group_id in Role.role_groups.through.objects.filter(role__owner=owner).values_list(
        "role_id", "rolegroup_id"
    ):
        _combine(by_group.get(group_id, {}).items(), by_role.setdefault(role_id, {}))
    roles = {pk: shortfalls(actor, levels) for pk, levels in by_role.items()}
    return (
        {pk: found for pk, found in groups.items() if found},
        {pk: found for pk, found in roles.items() if found},
    )


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def check_can_manage_user(actor, target, *, new_privilege_level: int | None = None) -> None:
    """Refuse editing a user of another owner, of higher privilege, or raising above the actor."""
    if actor.is_superuser:
        return
    if target.owner_id != actor.owner_id:
        raise Http404("Not found.")
    if target.is_superuser:
        raise EscalationRefused("Platform administrators can only be changed by one of them.")
    if target.pk != actor.pk and target.privilege_level > actor.privilege_level:
        raise EscalationRefused(
            f"{target.label} has privilege level {target.privilege_level}, above your "
            f"{actor.privilege_level}."
        )
    if new_privilege_level is not None and new_privilege_level > actor.privilege_level:
        raise EscalationRefused(
            f"You cannot set a privilege level above your own ({actor.privilege_level})."
        )


def administers_users(user) -> bool:
    """Say whether a user can administer users (full on Users) and can sign in."""
    return user.is_active and permissions.compute(user, catalog.Channel.APPLICATION).has(
        catalog.USERS, catalog.FULL
    )


def check_keeps_an_administrator(owner, *, would_lose: Iterable) -> None:
    """Refuse a change after which no active user of `owner` could administer users.

    `would_lose` is the users whose ability the change removes; call this with the change
    already applied inside the transaction, so the check sees the new state.
    """
    from .reports import who_has_access

    losing = [u for u in would_lose if not u.is_superuser]
    if not losing:
        return
    # The same rule as the resolver, in one query (see roles.reports), not user by user.
    if who_has_access(owner, catalog.USERS, catalog.FULL).filter(is_superuser=False).exists():
        return
    raise EscalationRefused(
        "This change would leave nobody able to administer users in this organisation."
    )
