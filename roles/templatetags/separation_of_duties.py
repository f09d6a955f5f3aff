"""Template helpers of separation of duties, for pages of other apps too:

- `{% sod_card subject %}`: the rules a user violates now (with the exception covering each) and
  what identity providers were refused for them (SOD_WITHHELD events).
- `{% sod_review_card item %}`: the rules an access review item's person violated at the
  review's start (from the item's snapshot) and whether they still do.
- `{% sod_tile %}`: the reviewers' dashboard tile, how many (person, rule) violations the
  owner has now (one query, `sod.violation_figures`).

Each loads what it shows itself, so that a page includes it with one line.
"""

from __future__ import annotations

from django import template
from django.contrib.auth import get_user_model
from django.utils import timezone

from audit.choices import AuditAction
from audit.models import AuditEvent

from .. import catalog, permissions, sod
from ..models import SodException, SodRule

register = template.Library()

WITHHELD_ROWS = 10


def _rules(owner_id) -> list[SodRule]:
    rules = list(SodRule.objects.filter(owner_id=owner_id))
    for rule in rules:
        rule.left_text = sod.describe_side(rule.left, rule.left_join)
        rule.right_text = sod.describe_side(rule.right, rule.right_join)
    return rules


def _exceptions_of(user_id: int, now) -> dict[int, SodException]:
    found: dict[int, SodException] = {}
    for exception in SodException.objects.in_force(now).filter(user_id=user_id):
        held = found.get(exception.rule_id)
        if held is None or exception.expires_at > held.expires_at:
            found[exception.rule_id] = exception
    return found


def violations_of(user, *, now=None) -> list[dict]:
    """Return the rules `user` violates now, each as {rule, exception (or None)}."""
    now = now or timezone.now()
    rules = _rules(user.owner_id)
    if not rules:
        return []
    levels = permissions.compute(user, catalog.Channel.APPLICATION, now=now, explain=False).levels
    broken = [rule for rule in rules if sod.violates(rule, levels)]
    if not broken:
        return []
    exceptions = _exceptions_of(user.pk, now)
    return [{"rule": rule, "exception": exceptions.get(rule.pk)} for rule in broken]


def withheld_of(user) -> list[AuditEvent]:
    """Return the latest events recording what an identity provider was refused for `user`."""
    return list(
        AuditEvent.objects.filter(action=AuditAction.SOD_WITHHELD, subject_user_id=user.pk)
        .only("occurred_at", "actor_label", "details", "context", "method")
        .order_by("-occurred_at", "-id")[:WITHHELD_ROWS]
    )


@register.inclusion_tag("roles/_sod_card.html", takes_context=True)
def sod_card(context, subject):
    """Draw `subject`'s separation-of-duties violations and withheld identity-provider access
    (nothing when there is neither)."""
    request = context.get("request")
    held = getattr(request, "permissions", None)
    return {
        "subject": subject,
        "violations": violations_of(subject),
        "withheld": withheld_of(subject),
        "sees_report": held is not None and held.has(catalog.USER_GROUPS, catalog.READ),
        # Nobody approves an exception for themselves: no link on one's own page.
        "may_approve": held is not None
        and held.has(catalog.ACCESS_REQUESTS, catalog.APPROVE)
        and request.user.pk != subject.pk,
    }


@register.inclusion_tag("roles/_sod_review.html")
def sod_review_card(item):
    """Draw the rules an access review item's person broke at the review's start (from its
    snapshot, as the rest of the page) and whether they still do."""
    owner_id = item.campaign.owner_id
    rules = _rules(owner_id)
    then = (item.snapshot or {}).get("application", {})
    rows = [{"rule": rule} for rule in rules if sod.violates(rule, then)]
    user = None
    if item.user_id is not None:
        user = get_user_model().objects.filter(pk=item.user_id, owner_id=owner_id).first()
    if user is not None and rules:
        now_broken = {row["rule"].pk: row for row in violations_of(user)}
        for row in rows:
            found = now_broken.pop(row["rule"].pk, None)
            row["now"] = found is not None
            row["exception"] = found["exception"] if found else None
        for found in now_broken.values():
            rows.append({"rule": found["rule"], "then": False, "now": True, **found})
    for row in rows:
        row.setdefault("then", True)
        row.setdefault("now", None)
        row.setdefault("exception", None)
    return {"rows": rows, "has_rules": bool(rules), "user_known": user is not None}


def violation_count(owner, *, now=None) -> int:
    """Return how many (person, rule) violations the owner has now (one query)."""
    return sum(f.total for f in sod.violation_figures(owner, now=now).values())


@register.inclusion_tag("roles/_sod_tile.html", takes_context=True)
def sod_tile(context):
    """Draw the reviewers' dashboard tile: the owner's violations now, linking to the report
    for those who may open it."""
    request = context["request"]
    return {
        "count": violation_count(request.user.owner),
        "sees_report": request.permissions.has(catalog.USER_GROUPS, catalog.READ),
    }
