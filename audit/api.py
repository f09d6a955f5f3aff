"""JSON endpoint of the audit log: the organisation's events, filtered, newest first (read-only).

This app imports no other app: the token's narrowed API permissions arrive on the request.
"""

from __future__ import annotations

import base64
import datetime
from typing import Annotated

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q
from django.utils import timezone
from ninja import Field, Query, Router, Schema

from .choices import AuditAction
from .models import AuditEvent

router = Router(tags=["Audit"])

AREA = "api_audit_events"
Text = Annotated[str, Field(max_length=200, pattern=r"^[^\x00]*$")]


class AuditEventOut(Schema):
    id: int
    occurred_at: datetime.datetime
    action: str
    category: str
    actor_id: int | None
    actor_label: str
    target_type: str
    target_id: str
    target_label: str
    subject_user_id: int | None
    changes: dict
    reason: str
    details: str
    context: dict
    request_id: str
    ip: str | None
    method: str


class AuditEventPage(Schema):
    items: list[AuditEventOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: end.")


class AuditFilters(Schema):
    action: AuditAction | None = None
    actor: int | None = Field(None, ge=1, le=2**53, description="The acting user's id.")
    subject: int | None = Field(None, ge=1, le=2**53, description="The user the event is about.")
    since: datetime.datetime | None = Field(None, description="Events at or after this time.")
    until: datetime.datetime | None = Field(None, description="Events before this time.")
    cursor: Text | None = None
    limit: int = Field(50, ge=1, le=200)


def _aware(moment: datetime.datetime, name: str = "cursor") -> datetime.datetime:
    """Return the moment in UTC (naive means UTC); 422 when it cannot be expressed there."""
    if timezone.is_naive(moment):
        return moment.replace(tzinfo=datetime.UTC)
    try:
        return moment.astimezone(datetime.UTC)
    except (OverflowError, ValueError) as exc:
        raise ValidationError({name: "This moment is out of range."}) from exc


def encode_cursor(event: AuditEvent) -> str:
    raw = f"e:{event.occurred_at.isoformat()}|{event.pk}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime.datetime, int]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, rest = raw.partition(":")
        moment, _, pk = rest.partition("|")
        if kind != "e":
            raise ValueError
        when = datetime.datetime.fromisoformat(moment)
        last_id = int(pk)
        if not 0 <= last_id <= 2**62:
            raise ValueError
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": "Not a cursor from this API."}) from exc
    return _aware(when), last_id


@router.get("/audit/events", response=AuditEventPage, summary="List audit events")
def list_events(request, filters: Query[AuditFilters]):
    """The organisation's events, newest first, a page at a time (needs API Audit Events read)."""
    if not request.api_permissions.has(AREA, "read"):
        raise PermissionDenied("This token needs read on Audit Events.")
    rows = AuditEvent.objects.filter(owner_id=request.api_user.owner_id).order_by(
        "-occurred_at", "-id"
    )
    if filters.action:
        rows = rows.filter(action=filters.action)
    if filters.actor:
        rows = rows.filter(actor_id=filters.actor)
    if filters.subject:
        rows = rows.filter(subject_user_id=filters.subject)
    if filters.since:
        rows = rows.filter(occurred_at__gte=_aware(filters.since, "since"))
    if filters.until:
        rows = rows.filter(occurred_at__lt=_aware(filters.until, "until"))
    if filters.cursor:
        when, last_id = decode_cursor(filters.cursor)
        rows = rows.filter(Q(occurred_at__lt=when) | Q(occurred_at=when, id__lt=last_id))
    page = list(rows[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return {
        "items": [{f: getattr(e, f) for f in AuditEventOut.model_fields} for e in page],
        "next_cursor": encode_cursor(page[-1]) if more else None,
    }
