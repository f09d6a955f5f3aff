"""JSON endpoints of identity: the token's own user (`/me`) and the organisation's users."""

from __future__ import annotations

import base64
import datetime
from typing import Annotated, Literal

from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from ninja import Field, Query, Router, Schema, Status

from roles import catalog, permissions
from roles.api import DecisionOut, Id, decision_out, require

from .choices import AccessSource
from .models import User
from .users import check_identity_free

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


# Writes: each field is checked by its model field and the same writers change the rows as on
# the screens (one rule, every door); the token's user is the actor.

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


def _reason(owner, text: str) -> str:
    """Return the Update Reason named by `text`: an entry of the owner's list when it has one
    (any letter case), else the text itself; 422 when none is given or it is not on the list."""
    from .models import UpdateReason

    text = text.strip()
    reasons = UpdateReason.objects.for_owner(owner).active()
    if reasons.exists():
        match = reasons.filter(name__iexact=text).first()
        if match is None:
            names = ", ".join(reasons.order_by("name").values_list("name", flat=True)[:20])
            raise ValidationError({"reason": f"Choose one of your Update Reasons: {names}."})
        return match.name
    if not text:
        raise ValidationError({"reason": "Say why: your organisation has no Update Reason list."})
    return text


def _values(owner, fields: dict, *, user: User | None = None) -> dict:
    """Turn the payload's fields into the values the account writers take.

    Related ids become the owner's rows (a retired department only when the user already has
    it); every other value is checked by its model field (choices, lengths, validators). All
    problems are reported at once, per field (422).
    """
    from roles.models import Role, RoleGroup

    from .models import Department

    errors: dict[str, list[str]] = {}
    values: dict = {}
    not_ours = "Choose from your organisation's list."
    for name, value in fields.items():
        if name == "role":
            values[name] = None
            if value is not None:
                values[name] = Role.objects.for_owner(owner).filter(pk=value).first()
                if values[name] is None:
                    errors[name] = [not_ours]
        elif name in ("extra_role_groups", "departments"):
            if name == "extra_role_groups":
                offered = RoleGroup.objects.for_owner(owner)
            else:
                held = user.departments.values_list("pk", flat=True) if user else []
                offered = Department.objects.for_owner(owner).filter(
                    Q(retired=False) | Q(pk__in=list(held))
                )
            wanted = set(value or ())
            rows = list(offered.filter(pk__in=wanted))
            if len(rows) != len(wanted):
                errors[name] = [not_ours]
            values[name] = rows
        else:
            field = User._meta.get_field(name)
            if isinstance(value, str):
                value = value.strip()
            try:
                values[name] = field.clean(value, user)
            except ValidationError as exc:
                errors[name] = exc.messages
    if "username" in values and not errors.get("username"):
        try:
            UnicodeUsernameValidator()(values["username"])
        except ValidationError as exc:
            errors["username"] = exc.messages
    identity = {k: values[k] for k in ("username", "email") if k in values and k not in errors}
    try:
        check_identity_free(identity, exclude_pk=user.pk if user else None)
    except ValidationError as exc:
        errors.update(exc.message_dict)
    if errors:
        raise ValidationError(errors)
    return values


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
    from . import users

    _require_write(request)
    actor = request.api_user
    data = {"time_zone": "UTC", "locale": "en-gb", "customer_access_scope": "all"}
    data |= {"kind": "interactive", "auth_source": "local", "privilege_level": 1}
    data |= {"expert_level": 0, "allow_login": True}
    data |= payload.model_dump(exclude_unset=True, exclude_none=True)
    user = users.create_user(
        actor=actor,
        data=_values(actor.owner, data),
        reason="",
        source=AccessSource.API,
    )
    return Status(201, user_out(get_user_or_404(request, user.pk)))


@router.patch("/users/{user_id}", response=UserOut, summary="Change a user")
def update_user(request, response: HttpResponse, user_id: Id, payload: UserUpdateIn):
    """Change the given fields (needs API Users write). Send the row_version you read (or
    If-Match): 409 when the record changed since. The Login flag has its own actions."""
    from . import users

    _require_write(request)
    user = get_user_or_404(request, user_id)
    changes = payload.model_dump(exclude_unset=True, exclude={"row_version", "reason", "details"})
    if "allow_login" in changes:
        raise ValidationError({"allow_login": "Use the deactivate and reactivate operations."})
    expected = _expected_version(request, payload.row_version)
    owner = request.api_user.owner
    users.update_user(
        user,
        actor=request.api_user,
        source=AccessSource.API,
        data=_values(owner, changes, user=user),
        expected_row_version=expected,
        reason=_reason(owner, payload.reason),
        details=payload.details.strip(),
    )
    user = get_user_or_404(request, user_id)
    response["ETag"] = f'"{user.row_version}"'
    return user_out(user)


def _login_flag(request, user_id: int, payload: LoginFlagIn, *, allow: bool) -> dict:
    from . import users

    _require_write(request)
    user = get_user_or_404(request, user_id)
    action = users.reactivate_user if allow else users.deactivate_user
    action(
        user,
        actor=request.api_user,
        source=AccessSource.API,
        reason=_reason(request.api_user.owner, payload.reason),
        details=payload.details.strip(),
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
