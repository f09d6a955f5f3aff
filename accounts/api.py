"""JSON endpoints of identity: the token's own user (`/me`) and the organisation's users."""

from __future__ import annotations

import base64
import datetime
from typing import Annotated, Literal

from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from ninja import Field, Query, Router, Schema, Status

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


# Writes: the same forms validate the input and the same services change the rows as on the
# screens (one rule, two doors); the token's user is the actor.

Name = Annotated[str, Field(max_length=150, pattern=r"^[^\x00]*$")]
LongText = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
RefId = Annotated[int, Field(ge=1, le=2**53)]


class UserFieldsIn(Schema):
    """The fields of a user record the API may set; commission details stay on the screens."""

    username: Name | None = None
    email: Name | None = None
    first_name: Name | None = None
    last_name: Name | None = None
    display_name: Name | None = None
    locale: Name | None = None
    time_zone: Name | None = None
    kind: Literal["interactive", "api"] | None = None
    auth_source: Literal["local", "saml"] | None = None
    allow_login: bool | None = None
    allow_api_read: bool | None = None
    allow_api_write: bool | None = None
    allow_email_reports: bool | None = None
    customer_access_scope: Name | None = None
    role: RefId | None = None
    privilege_level: int | None = Field(None, ge=0, le=10)
    expert_level: int | None = Field(None, ge=0, le=3)
    is_account_manager: bool | None = None
    is_commission_holder: bool | None = None
    extra_role_groups: list[RefId] | None = Field(None, max_length=200)
    departments: list[RefId] | None = Field(None, max_length=200)


class UserCreateIn(UserFieldsIn):
    username: Name
    email: Name


class UserUpdateIn(UserFieldsIn):
    row_version: int | None = Field(
        None, ge=1, le=2**31, description="The version you read (or send If-Match)."
    )
    reason: Name = Field(description="The Update Reason (an entry of the owner's list if any).")
    details: LongText = ""


class LoginFlagIn(Schema):
    reason: Name = Field(description="The Update Reason (an entry of the owner's list if any).")
    details: LongText = ""


def _form_values(form) -> dict:
    """Return a user form's current values as submitted data (ids for related rows)."""
    values = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if hasattr(value, "all"):
            value = [obj.pk for obj in value.all()]
        elif isinstance(value, list | tuple):
            value = [getattr(obj, "pk", obj) for obj in value]
        elif hasattr(value, "pk"):
            value = value.pk
        values[name] = value
    return {k: v for k, v in values.items() if v is not None}


def _checked(form) -> dict:
    """Validate a bound form; 422 with its errors per field."""
    if not form.is_valid():
        raise ValidationError(
            {
                ("reason" if name == "update_reason" else name): errors
                for name, errors in form.errors.as_data().items()
            }
        )
    return form.cleaned_data


def _reason_value(form, reason: str):
    """Map a reason given by name onto the form's Update Reason field (a list or free text)."""

    field = form.fields["update_reason"]
    if hasattr(field, "queryset"):
        match = field.queryset.filter(name__iexact=reason.strip()).first()
        return match.pk if match else reason
    return reason


def _require_write(request) -> None:
    require(request, catalog.API_USERS, catalog.WRITE)


def _expected_version(request, given: int | None) -> int:
    header = request.headers.get("If-Match", "").strip().removeprefix("W/").strip('"')
    if header:
        try:
            return int(header)
        except ValueError as exc:
            raise ValidationError({"row_version": "If-Match must be a row_version."}) from exc
    if given is None:
        raise ValidationError({"row_version": "Send the row_version you read, or If-Match."})
    return given


@router.post("/users", response={201: UserOut}, summary="Create a user")
def create_user(request, payload: UserCreateIn):
    """Create a user of the organisation (needs API Users write); no password is set: the person
    gets one through the access email, an API user uses tokens."""
    from . import services
    from .forms import UserCreateForm

    _require_write(request)
    actor = request.api_user
    data = {"time_zone": "UTC", "locale": "en-gb", "customer_access_scope": "all"}
    data |= {"kind": "interactive", "auth_source": "local", "privilege_level": 1}
    data |= {"expert_level": 0, "allow_login": True}
    data |= payload.model_dump(exclude_unset=True, exclude_none=True)
    form = UserCreateForm(data=data, owner=actor.owner)
    _checked(form)
    user = services.create_user(actor=actor, data=form.service_data())
    return Status(201, user_out(get_user_or_404(request, user.pk)))


@router.patch("/users/{user_id}", response=UserOut, summary="Change a user")
def update_user(request, response: HttpResponse, user_id: Id, payload: UserUpdateIn):
    """Change the given fields (needs API Users write). Send the row_version you read (or
    If-Match): 409 when the record changed since. The Login flag has its own actions."""
    from . import services
    from .forms import UserEditForm, reason_text

    _require_write(request)
    user = get_user_or_404(request, user_id)
    changes = payload.model_dump(exclude_unset=True, exclude={"row_version", "reason", "details"})
    if "allow_login" in changes:
        raise ValidationError({"allow_login": "Use the deactivate and reactivate operations."})
    expected = _expected_version(request, payload.row_version)
    owner = request.api_user.owner
    current = User.objects.get(pk=user.pk)
    blank = UserEditForm(owner=owner, instance=current)
    data = {**_form_values(blank), **changes, "row_version": expected}
    form = UserEditForm(data=data, owner=owner, instance=current)
    data["update_reason"] = _reason_value(form, payload.reason)
    data["update_details"] = payload.details
    form = UserEditForm(data=data, owner=owner, instance=current)
    cleaned = _checked(form)
    services.update_user(
        user,
        actor=request.api_user,
        data=form.service_data(),
        expected_row_version=expected,
        reason=reason_text(cleaned["update_reason"]),
        details=cleaned["update_details"],
    )
    user = get_user_or_404(request, user_id)
    response["ETag"] = f'"{user.row_version}"'
    return user_out(user)


def _login_flag(request, user_id: int, payload: LoginFlagIn, *, allow: bool) -> dict:
    from . import services
    from .forms import LoginFlagForm, reason_text

    _require_write(request)
    user = get_user_or_404(request, user_id)
    form = LoginFlagForm(data={}, owner=request.api_user.owner)
    form = LoginFlagForm(
        data={
            "update_reason": _reason_value(form, payload.reason),
            "update_details": payload.details,
        },
        owner=request.api_user.owner,
    )
    cleaned = _checked(form)
    action = services.reactivate_user if allow else services.deactivate_user
    action(
        user,
        actor=request.api_user,
        reason=reason_text(cleaned["update_reason"]),
        details=cleaned["update_details"],
    )
    return user_out(get_user_or_404(request, user_id))


@router.post("/users/{user_id}/deactivate", response=UserOut, summary="Deactivate a user")
def deactivate_user(request, user_id: Id, payload: LoginFlagIn):
    """Remove the Login flag: sign-in is refused and live sessions end (needs API Users write).
    An API user is stopped by removing its API flags instead."""
    return _login_flag(request, user_id, payload, allow=False)


@router.post("/users/{user_id}/reactivate", response=UserOut, summary="Reactivate a user")
def reactivate_user(request, user_id: Id, payload: LoginFlagIn):
    """Give the Login flag back to a deactivated interactive user (needs API Users write)."""
    return _login_flag(request, user_id, payload, allow=True)
