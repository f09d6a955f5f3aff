"""JSON endpoints of just-in-time access: request, list, approve, deny, withdraw and end.

The same services as the screens (`roles.elevations`), the token's user as the person. Asking
for one's own eligible access, withdrawing or ending it needs a token that may write (not
read-only, its user holding the API write flag); reading the organisation's requests needs API
Access Requests read; deciding and ending someone else's needs API Access Requests write, and
the service then checks what the screens check (Approve on Access Requests, someone else, every
level the role group gives).
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from ninja import Field, Query, Router, Schema, Status
from pydantic import AwareDatetime

from . import catalog, elevations
from .api import MAX_ID, Id, owner_id, require
from .models import AccessRequest, RoleGroup

router = Router(tags=["Just-in-time access"])

RefId = Annotated[int, Field(ge=1, le=MAX_ID)]
Hours = Annotated[int, Field(ge=1, le=elevations.MAX_HOURS_CEILING)]
Justification = Annotated[str, Field(max_length=1000, pattern=r"^[^\x00]*$")]
Reason = Annotated[str, Field(max_length=500, pattern=r"^[^\x00]*$")]
Ticket = Annotated[str, Field(max_length=120, pattern=r"^[^\x00]*$")]
Version = Annotated[int, Field(ge=1, le=2**31)]
State = Literal["pending", "approved", "denied", "withdrawn"]
RequestStatus = Literal[
    "pending", "lapsed", "denied", "withdrawn", "scheduled", "active", "ended", "expired"
]


class AccessRequestIn(Schema):
    role_group: RefId = Field(description="The id of a role group you are eligible for.")
    hours: Hours = Field(description="How long, at most the organisation's maximum.")
    justification: Justification = Field(description="Why; approvers read it.")
    ticket: Ticket = ""
    starts_at: AwareDatetime | None = Field(
        None, description="When it starts (with a time zone); null or absent: now."
    )


class ApproveIn(Schema):
    hours: Hours | None = Field(None, description="Approve fewer hours than asked; null: all.")
    note: Reason = Field("", description="Told to the requester; kept in the audit log.")
    row_version: Version | None = Field(None, description="The version you read; 409 if moved.")


class DenyIn(Schema):
    reason: Reason = Field(description="Why; the requester is told.")
    row_version: Version | None = None


class EndIn(Schema):
    reason: Reason = Field("", description="Required to end someone else's elevation.")


class AccessRequestOut(Schema):
    id: int
    user: int
    username: str
    role_group: int
    role_group_name: str
    state: State = Field(description="What was decided.")
    status: RequestStatus = Field(description="Where it stands now (active inside its window).")
    starts_at: datetime.datetime
    ends_at: datetime.datetime
    requested_ends_at: datetime.datetime
    justification: str
    ticket: str
    break_glass: bool
    decided_by: int | None
    decided_at: datetime.datetime | None
    decision_reason: str
    ended_by: int | None
    ended_early_at: datetime.datetime | None
    end_reason: str
    created_at: datetime.datetime
    row_version: int


class AccessRequestPage(Schema):
    items: list[AccessRequestOut]
    next_before: int | None = Field(description="Pass as `before` for the next page; null: end.")


class AccessRequestFilters(Schema):
    scope: Literal["mine", "organisation"] = Field(
        "mine", description="Your own requests, or (API Access Requests read) everyone's."
    )
    state: State | None = None
    before: RefId | None = Field(None, description="Only requests older than this id.")
    limit: int = Field(50, ge=1, le=200)


def request_out(row: AccessRequest) -> dict:
    return {
        "id": row.pk,
        "user": row.user_id,
        "username": row.user.username,
        "role_group": row.role_group_id,
        "role_group_name": row.role_group.name,
        "state": row.state,
        "status": row.status(),
        "starts_at": row.starts_at,
        "ends_at": row.ends_at,
        "requested_ends_at": row.requested_ends_at,
        "justification": row.justification,
        "ticket": row.ticket,
        "break_glass": row.break_glass,
        "decided_by": row.decided_by_id,
        "decided_at": row.decided_at,
        "decision_reason": row.decision_reason,
        "ended_by": row.ended_by_id,
        "ended_early_at": row.ended_early_at,
        "end_reason": row.end_reason,
        "created_at": row.created_at,
        "row_version": row.row_version,
    }


def _rows(request):
    return AccessRequest.objects.filter(owner_id=owner_id(request)).select_related(
        "user", "role_group"
    )


def _request_or_404(request, request_id: int) -> AccessRequest:
    row = _rows(request).filter(pk=request_id).first()
    if row is None:
        raise Http404
    return row


def _fresh(request, row: AccessRequest) -> dict:
    return request_out(_rows(request).get(pk=row.pk))


def _require_writing_token(request) -> None:
    """Refuse (403) a read-only token, or one whose user lacks the API write flag."""
    if request.api_token.read_only or not request.api_user.allow_api_write:
        raise PermissionDenied("This token may only read.")


def _may_see(request, row: AccessRequest) -> None:
    if row.user_id != request.api_user.pk:
        require(request, catalog.API_ACCESS_REQUESTS, catalog.READ)


def _decision(call):
    """Run a decision; a request decided meanwhile answers 409 (two approvers at once)."""
    try:
        return call()
    except ValidationError as exc:
        if hasattr(exc, "error_dict"):
            raise
        raise ValidationError(exc.messages[0], code="stale") from exc


@router.post(
    "/access-requests",
    response={201: AccessRequestOut},
    summary="Ask for an eligible role group",
)
def create_access_request(request, payload: AccessRequestIn):
    """Ask, for the token's user, for a role group they are eligible for, for `hours` from
    `starts_at` (now when absent). A self-activating group is active at once; any other waits
    for someone else's approval and its approvers are emailed. Needs a token that may write."""
    _require_writing_token(request)
    group = RoleGroup.objects.filter(owner_id=owner_id(request), pk=payload.role_group).first()
    if group is None:
        raise ValidationError({"role_group": "Choose a role group of your organisation."})
    made = elevations.request_access(
        request.api_user,
        group,
        justification=payload.justification,
        hours=payload.hours,
        ticket=payload.ticket,
        starts_at=payload.starts_at,
    )
    return Status(201, _fresh(request, made))


@router.get("/access-requests", response=AccessRequestPage, summary="List access requests")
def list_access_requests(request, filters: Query[AccessRequestFilters]):
    """The token user's own requests, or with `scope=organisation` (needs API Access Requests
    read) everyone's; newest first, a page at a time."""
    rows = _rows(request)
    if filters.scope == "organisation":
        require(request, catalog.API_ACCESS_REQUESTS, catalog.READ)
    else:
        rows = rows.filter(user_id=request.api_user.pk)
    if filters.state:
        rows = rows.filter(state=filters.state)
    if filters.before:
        rows = rows.filter(pk__lt=filters.before)
    page = list(rows.order_by("-pk")[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return {
        "items": [request_out(r) for r in page],
        "next_before": page[-1].pk if more else None,
    }


@router.get(
    "/access-requests/{request_id}", response=AccessRequestOut, summary="Read an access request"
)
def get_access_request(request, request_id: Id):
    """One request: your own, or anyone's with API Access Requests read."""
    row = _request_or_404(request, request_id)
    _may_see(request, row)
    return request_out(row)


@router.post(
    "/access-requests/{request_id}/approve",
    response=AccessRequestOut,
    summary="Approve an access request",
)
def approve_access_request(request, request_id: Id, payload: ApproveIn):
    """Approve a waiting request, for its whole window or fewer `hours` (needs API Access
    Requests write; the token's user must be someone else holding Approve on Access Requests
    and every level the group gives). 409 when it was decided meanwhile."""
    require(request, catalog.API_ACCESS_REQUESTS, catalog.WRITE)
    row = _request_or_404(request, request_id)
    decided = _decision(
        lambda: elevations.approve(
            row,
            actor=request.api_user,
            reason=payload.note,
            hours=payload.hours,
            expected_row_version=payload.row_version,
        )
    )
    return _fresh(request, decided)


@router.post(
    "/access-requests/{request_id}/deny",
    response=AccessRequestOut,
    summary="Deny an access request",
)
def deny_access_request(request, request_id: Id, payload: DenyIn):
    """Deny a waiting request with a reason the requester is told (needs API Access Requests
    write, and Approve on Access Requests). 409 when it was decided meanwhile."""
    require(request, catalog.API_ACCESS_REQUESTS, catalog.WRITE)
    row = _request_or_404(request, request_id)
    decided = _decision(
        lambda: elevations.deny(
            row,
            actor=request.api_user,
            reason=payload.reason,
            expected_row_version=payload.row_version,
        )
    )
    return _fresh(request, decided)


@router.post(
    "/access-requests/{request_id}/withdraw",
    response=AccessRequestOut,
    summary="Withdraw your own waiting request",
)
def withdraw_access_request(request, request_id: Id):
    """Withdraw a request of the token's user that nobody has decided yet. 409 when it was
    decided meanwhile."""
    _require_writing_token(request)
    row = _request_or_404(request, request_id)
    if row.user_id != request.api_user.pk:
        raise Http404
    _decision(lambda: elevations.withdraw(row, actor=request.api_user))
    return _fresh(request, row)


@router.post(
    "/access-requests/{request_id}/end", response=AccessRequestOut, summary="End an elevation now"
)
def end_access_request(request, request_id: Id, payload: EndIn):
    """End an elevation now (or cancel one approved to start later): your own, or someone
    else's with API Access Requests write and Approve on Access Requests, with a reason."""
    row = _request_or_404(request, request_id)
    if row.user_id == request.api_user.pk:
        _require_writing_token(request)
    else:
        require(request, catalog.API_ACCESS_REQUESTS, catalog.WRITE)
    ended = _decision(lambda: elevations.end(row, actor=request.api_user, reason=payload.reason))
    return _fresh(request, ended)
