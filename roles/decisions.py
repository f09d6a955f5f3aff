"""Answer "may this person do LEVEL on AREA?" for the platform's other services.

One service behind both doors: the portal's own `POST /api/v1/authz/check` and the AuthZEN 1.0
endpoints (`/access/v1/evaluation`, `/access/v1/evaluations`). The answer is the resolver's,
from the same cache as the portal's pages when no explanation is asked for.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.db.models.functions import Lower

from . import catalog, permissions


@dataclass(frozen=True)
class Answer:
    """A decision: allowed or not, the level held, and (when asked) why."""

    allowed: bool
    level: str = catalog.NONE
    because: tuple = field(default_factory=tuple)
    refusal: str = ""  # why the question could not be answered yes: unknown_subject...


# What a decision reads of its subject (the permission cache key, the resolver's gates and
# groups); any other field would load on first use.
DECISION_FIELDS = (
    "id",
    "owner_id",
    "username",
    "permissions_version",
    "allow_login",
    "allow_api_read",
    "allow_api_write",
    "kind",
    "privilege_level",
    "is_superuser",
    "role_id",
)


def find_users(
    owner, refs: Iterable[int | str], *, with_role: bool = False
) -> dict[int | str, object]:
    """Return {reference: user} for the owner's users named by id or username, in one query.

    A username matches in any letter case; references that match nobody are left out. Each
    user comes with `owner` (the object passed, not joined again), the fields a decision reads
    (`DECISION_FIELDS`) and, `with_role`, its role (an explanation names it).
    """
    refs = list(refs)
    ids = {r for r in refs if isinstance(r, int)}
    names = {str(r).lower() for r in refs if not isinstance(r, int)}
    # Unordered (a lookup by key needs no ORDER BY) and narrow: built on every decision.
    users = get_user_model().objects.filter(owner_id=owner.pk).order_by()
    users = users.select_related("role") if with_role else users.only(*DECISION_FIELDS)
    found = {}
    if ids:
        for user in users.filter(pk__in=ids):
            found[user.pk] = user
    if names:
        lowered = users.annotate(username_lower=Lower("username"))
        for user in lowered.filter(username_lower__in=names):
            found[user.username.lower()] = user
    result = {}
    for ref in refs:
        key = ref if isinstance(ref, int) else str(ref).lower()
        if key in found:
            found[key].owner = owner
            result[ref] = found[key]
    return result


def decide(user, code: str, level: str, *, channel: str | None = None, explain: bool = False):
    """Decide whether `user` may do `level` on area `code`.

    An unknown area, a level the area does not have, or an area of another channel than the
    one asked for is a refusal with its reason, never an error: the caller asked about
    something this portal does not grant.
    """
    if user is None:
        return Answer(False, refusal="unknown_subject")
    area = catalog.BY_CODE.get(code)
    if area is None:
        return Answer(False, refusal="unknown_resource")
    if not area.is_level(level):
        return Answer(False, refusal="unknown_action")
    if channel is not None and area.channel != channel:
        return Answer(False, refusal="other_channel")
    if not explain:
        held = permissions.for_user(user, area.channel).level(area.code)
        return Answer(area.at_least(held, level), held)
    decision = permissions.explain_area(user, area.code)
    return Answer(area.at_least(decision.level, level), decision.level, decision.because)
