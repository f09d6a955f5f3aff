"""No escalation, and nothing of another owner: the checks every write path makes.

- Nobody grants a level they do not hold themselves (role groups, roles, overrides, tokens).
- Nobody edits a user of higher privilege level, or raises anyone above their own.
- The last active user able to administer users in an owner cannot lose that ability.
- Another owner's objects answer 404.
Platform superusers are the only exception to the first three.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from django.core.exceptions import PermissionDenied
from django.http import Http404

from . import catalog, permissions


class EscalationRefused(PermissionDenied):
    """A change would give someone more than the actor holds; the message says what."""


def get_owned_or_404(actor, queryset, pk):
    """Return the object with `pk` from `queryset` if it belongs to the actor's owner, else 404."""
    try:
        pk = int(pk)
    except (TypeError, ValueError) as exc:
        raise Http404("Not found.") from exc
    obj = queryset.filter(pk=pk, owner_id=actor.owner_id).first()
    if obj is None:
        raise Http404("Not found.")
    return obj


def held(actor, channel: str = catalog.Channel.APPLICATION):
    """Return the actor's own effective permissions in `channel` (API areas: the API channel)."""
    return permissions.for_user(actor, channel)


def check_can_grant(actor, levels: Mapping[str, str]) -> None:
    """Refuse when any `{area: level}` exceeds what the actor holds in that area's channel."""
    if actor.is_superuser:
        return
    too_high = []
    for code, level in levels.items():
        area = catalog.validate(code, level)
        if level == catalog.NONE:
            continue
        mine = _held_level(actor, area)
        if area.rank(level) > area.rank(mine):
            too_high.append(f"{area.label} ({level}; you hold {mine})")
    if too_high:
        raise EscalationRefused(
            "You cannot grant more than you hold yourself: " + ", ".join(too_high) + "."
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


def check_can_grant_groups(actor, groups: Iterable) -> None:
    """Refuse handing out role groups whose grants exceed what the actor holds."""
    if actor.is_superuser:
        return
    from .models import Grant

    combined: dict[str, str] = {}
    # One query whatever the number of groups (a queryset of groups becomes a subquery).
    for code, level in Grant.objects.filter(role_group__in=groups).values_list("area", "level"):
        area = catalog.BY_CODE.get(code)
        if area is None or not area.is_level(level):
            continue
        if code not in combined or area.rank(level) > area.rank(combined[code]):
            combined[code] = level
    check_can_grant(actor, combined)


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
