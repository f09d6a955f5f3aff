"""Template helpers of just-in-time access: `{{ status|request_status }}` (a badge) and
`{% eligibility_card subject %}` (a user's eligible role groups beside their standing access).

The card is drawn by pages of other apps too (the user record's permissions tab), so it loads
what it shows itself.
"""

from __future__ import annotations

from django import template
from django.utils import timezone
from django.utils.html import format_html

from .. import catalog, elevations
from ..choices import RequestState
from ..models import AccessRequest, Eligibility

register = template.Library()

STATUS = {
    "pending": ("Waiting for approval", "warning"),
    "lapsed": ("Lapsed (nobody decided in time)", ""),
    "denied": ("Denied", "danger"),
    "withdrawn": ("Withdrawn", ""),
    "scheduled": ("Approved, starts later", "success"),
    "active": ("Active", "success"),
    "ended": ("Ended early", ""),
    "expired": ("Expired", ""),
}


@register.filter
def request_status(status: str):
    """Draw a request's status (`AccessRequest.status()`) as a badge."""
    label, tone = STATUS.get(status, (status, ""))
    return format_html('<span class="badge{}">{}</span>', f" badge--{tone}" if tone else "", label)


def eligibility_rows(user, *, now=None) -> list[dict]:
    """Return the role groups `user` may ask for, each with where it comes from and where it
    stands now (eligible, waiting, active until, held standing)."""
    now = now or timezone.now()
    rows: dict[int, dict] = {}
    if user.role_id is not None:
        for group in user.role.eligible_role_groups.order_by("name"):
            rows[group.pk] = {"group": group, "via_role": user.role, "eligibility": None}
    for eligibility in Eligibility.objects.filter(user_id=user.pk).select_related(
        "role_group", "created_by"
    ):
        row = rows.setdefault(
            eligibility.role_group_id,
            {"group": eligibility.role_group, "via_role": None, "eligibility": None},
        )
        row["eligibility"] = eligibility
    if not rows:
        return []
    askable = {g.pk for g in elevations.eligible_groups(user)}
    open_requests = (
        AccessRequest.objects.filter(user_id=user.pk, role_group_id__in=list(rows))
        .filter(state__in=[RequestState.PENDING, RequestState.APPROVED])
        .order_by("created_at")
    )
    for access_request in open_requests:
        status = access_request.status(now)
        if status in ("pending", "active", "scheduled"):
            rows[access_request.role_group_id]["request"] = access_request
            rows[access_request.role_group_id]["status"] = status
    result = []
    for row in sorted(rows.values(), key=lambda r: r["group"].name.lower()):
        row.setdefault("request", None)
        row.setdefault("status", "eligible" if row["group"].pk in askable else "standing")
        row["api"] = row["group"].channel == catalog.Channel.API
        result.append(row)
    return result


@register.inclusion_tag("roles/_eligibility.html", takes_context=True)
def eligibility_card(context, subject, own=False):
    """Draw `subject`'s eligible role groups; `own` for the person's own page (with links to
    ask), else with the management links for people who hold Users full."""
    request = context.get("request")
    can_manage = bool(
        not own
        and request is not None
        and getattr(request, "permissions", None) is not None
        and request.permissions.has(catalog.USERS, catalog.FULL)
    )
    return {
        "subject": subject,
        "rows": eligibility_rows(subject),
        "own": own,
        "can_manage": can_manage,
        "request": request,
    }
