"""JSON endpoints of identity: the token's own user (`/me`) and the organisation's users."""

from __future__ import annotations

import base64
import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from ninja import Field, Query, Router, Schema

from roles import catalog, permissions
from roles.api import DecisionOut, Id, decision_out, require

from .models import User

router = Router(tags=["Users"])

SearchText = Annotated[str, Field(max_length=100, pattern=r"^[^\x00]*$")]


class TokenOut(Schema):
    name: str
    prefix: str
    read_only: bool
    areas: list[str] = Field(description="API areas the token is limited to; empty: all.")
    allowed_networks: list[str]
    created_at: datetime.datetime
    expires_at: datetime.datetime
    last_used_at: datetime.datetime | None


class UserOut(Schema):
    id: int
    username: str
    email: str
    first_name: str
    last_name: str
    display_name: str
    label: str
    kind: str
    auth_source: str
    allow_login: bool
    allow_api_read: bool
    allow_api_write: bool
    allow_email_reports: bool
    customer_access_scope: str
    privilege_level: int
    expert_level: int
    is_account_manager: bool
    is_commission_holder: bool
    locale: str
    time_zone: str
    role: int | None
    extra_role_groups: list[int]
    departments: list[int]
    last_sign_in_at: datetime.datetime | None
    created_at: datetime.datetime
    updated_at: datetime.datetime
    row_version: int


class UserPage(Schema):
    items: list[UserOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: end.")


class MeOut(Schema):
    user: UserOut
    token: TokenOut
    permissions: dict[str, str] = Field(
        description="The token's effective API levels: its user's, narrowed by the token."
    )


class PermissionsOut(Schema):
    user: int
    application: list[DecisionOut]
    api: list[DecisionOut]


class UserFilters(Schema):
    q: SearchText | None = Field(None, description="Part of the username, name or email.")
    kind: Literal["interactive", "api"] | None = None
    login: bool | None = Field(None, description="With (true) or without the Login flag.")
    role: int | None = Field(None, ge=1, le=2**53, description="Only holders of this role id.")
    cursor: SearchText | None = None
    limit: int = Field(50, ge=1, le=200)


def user_out(user: User) -> dict:
    return {
        **{
            name: getattr(user, name)
            for name in UserOut.model_fields
            if name not in {"role", "extra_role_groups", "departments", "label"}
        },
        "label": user.label,
        "role": user.role_id,
        "extra_role_groups": sorted(g.pk for g in user.extra_role_groups.all()),
        "departments": sorted(d.pk for d in user.departments.all()),
    }


def users_of(request):
    return User.objects.filter(owner_id=request.api_user.owner_id).prefetch_related(
        "extra_role_groups", "departments"
    )


def get_user_or_404(request, user_id: int) -> User:
    user = users_of(request).select_related("owner", "role").filter(pk=user_id).first()
    if user is None:
        raise Http404
    return user


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(f"u:{last_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = text.partition(":")
        last_id = int(value)
        if kind != "u" or not 0 <= last_id <= 2**53:
            raise ValueError
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValidationError({"cursor": "Not a cursor from this API."}) from exc
    return last_id


@router.get("/me", response=MeOut, summary="The token's user and what the token may do")
def me(request):
    """Who the token belongs to, its scope and its effective API permissions (any token)."""
    token = request.auth
    return {
        "user": user_out(get_user_or_404(request, request.api_user.pk)),
        "token": {
            "name": token.name,
            "prefix": token.prefix,
            "read_only": token.read_only,
            "areas": token.areas,
            "allowed_networks": token.allowed_networks,
            "created_at": token.created_at,
            "expires_at": token.expires_at,
            "last_used_at": token.last_used_at,
        },
        "permissions": dict(sorted(request.api_permissions.levels.items())),
    }


@router.get("/users", response=UserPage, summary="List users")
def list_users(request, filters: Query[UserFilters]):
    """The organisation's users by id, filtered, a page at a time (needs API Users read)."""
    require(request, catalog.API_USERS, catalog.READ)
    rows = users_of(request).order_by("id")
    if filters.q:
        q = filters.q.strip()
        rows = rows.filter(
            Q(username__icontains=q)
            | Q(email__icontains=q)
            | Q(first_name__icontains=q)
            | Q(last_name__icontains=q)
            | Q(display_name__icontains=q)
        )
    if filters.kind:
        rows = rows.filter(kind=filters.kind)
    if filters.login is not None:
        rows = rows.filter(allow_login=filters.login)
    if filters.role:
        rows = rows.filter(role_id=filters.role)
    if filters.cursor:
        rows = rows.filter(id__gt=decode_cursor(filters.cursor))
    page = list(rows[: filters.limit + 1])
    more = len(page) > filters.limit
    page = page[: filters.limit]
    return {
        "items": [user_out(u) for u in page],
        "next_cursor": encode_cursor(page[-1].pk) if more else None,
    }


@router.get("/users/{user_id}", response=UserOut, summary="Read a user")
def get_user(request, response: HttpResponse, user_id: Id):
    """One user; the ETag is its row_version, for If-Match on updates (needs API Users read)."""
    require(request, catalog.API_USERS, catalog.READ)
    user = get_user_or_404(request, user_id)
    response["ETag"] = f'"{user.row_version}"'
    return user_out(user)


@router.get(
    "/users/{user_id}/permissions",
    response=PermissionsOut,
    summary="A user's effective permissions and why",
)
def user_permissions(request, user_id: Id):
    """Per area, the level in each channel and what gives it: the same answer as the screens."""
    require(request, catalog.API_USERS, catalog.READ)
    user = get_user_or_404(request, user_id)
    return {
        "user": user.pk,
        "application": [
            decision_out(d)
            for d in permissions.explained(user, catalog.Channel.APPLICATION).granted()
        ],
        "api": [
            decision_out(d) for d in permissions.explained(user, catalog.Channel.API).granted()
        ],
    }
