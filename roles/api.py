"""JSON endpoints of the permission engine: areas, role groups, roles and the authorization check.

Every operation names the API area it needs; `require` checks it against the token's narrowed
API permissions (`request.api_permissions`). Application grants never count here.
"""

from __future__ import annotations

from typing import Annotated, Literal

from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404
from ninja import Field, Path, Router, Schema

from . import catalog, permissions
from .models import Grant, Role, RoleGroup

router = Router(tags=["Roles and authorization"])

MAX_ID = 2**53
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Text = Annotated[str, Field(max_length=150, pattern=r"^[^\x00]*$")]


def require(request, area: str, level: str) -> None:
    """Refuse (403) unless the token reaches `level` on the API area `area`."""
    if not request.api_permissions.has(area, level):
        raise PermissionDenied(f"This token needs {level} on {catalog.get(area).label}.")


def owner_id(request) -> int:
    return request.api_user.owner_id


class AreaOut(Schema):
    code: str
    label: str
    category: str
    channel: str
    levels: list[str]


class GrantOut(Schema):
    area: str
    level: str


class RoleGroupOut(Schema):
    id: int
    name: str
    kind: str
    description: str
    row_version: int
    grants: list[GrantOut]


class RoleGroupList(Schema):
    items: list[RoleGroupOut]


class RoleOut(Schema):
    id: int
    name: str
    description: str
    row_version: int
    role_groups: list[int]


class RoleList(Schema):
    items: list[RoleOut]


class ReasonOut(Schema):
    kind: str
    text: str
    level: str


class DecisionOut(Schema):
    area: str
    label: str
    level: str
    because: list[ReasonOut]


class AuthzCheckIn(Schema):
    user: int | Text = Field(description="The user's id, or their username.")
    area: Text = Field(description="An area code from GET /areas.")
    level: Text = Field(description="The level asked for, one of the area's levels.")
    channel: Literal["application", "api"] = "application"


class AuthzCheckOut(Schema):
    allowed: bool
    level: str = Field(description="The level the user holds on the area.")
    because: list[ReasonOut]


def reasons_out(decision) -> list[dict]:
    return [{"kind": r.kind, "text": r.text, "level": r.level} for r in decision.because]


def decision_out(decision) -> dict:
    return {
        "area": decision.area.code,
        "label": decision.area.label,
        "level": decision.level,
        "because": reasons_out(decision),
    }


def group_out(group: RoleGroup) -> dict:
    return {
        "id": group.pk,
        "name": group.name,
        "kind": group.kind,
        "description": group.description,
        "row_version": group.row_version,
        "grants": [
            {"area": g.area, "level": g.level}
            for g in group.grants.all()
            if g.level != catalog.NONE
        ],
    }


def role_out(role: Role) -> dict:
    return {
        "id": role.pk,
        "name": role.name,
        "description": role.description,
        "row_version": role.row_version,
        "role_groups": sorted(g.pk for g in role.role_groups.all()),
    }


def _groups(request):
    return RoleGroup.objects.filter(owner_id=owner_id(request)).prefetch_related(
        Prefetch("grants", queryset=Grant.objects.order_by("area"))
    )


def _roles(request):
    return Role.objects.filter(owner_id=owner_id(request)).prefetch_related("role_groups")


@router.get("/areas", response=list[AreaOut], summary="List the permission areas")
def list_areas(request, channel: Literal["application", "api"] | None = None):
    """Every area of the catalog with its ordered levels (needs API Roles read)."""
    require(request, catalog.API_ROLES, catalog.READ)
    areas = catalog.areas_for(channel) if channel else catalog.AREAS
    return [
        {
            "code": a.code,
            "label": a.label,
            "category": a.category,
            "channel": a.channel,
            "levels": list(a.levels),
        }
        for a in areas
    ]


@router.get("/role-groups", response=RoleGroupList, summary="List role groups")
def list_role_groups(request, kind: Literal["application", "api"] | None = None):
    """The organisation's role groups with their grants (needs API Roles read)."""
    require(request, catalog.API_ROLES, catalog.READ)
    groups = _groups(request)
    if kind:
        groups = groups.filter(kind=kind)
    return {"items": [group_out(g) for g in groups]}


@router.get("/role-groups/{group_id}", response=RoleGroupOut, summary="Read a role group")
def get_role_group(request, group_id: Id):
    require(request, catalog.API_ROLES, catalog.READ)
    group = _groups(request).filter(pk=group_id).first()
    if group is None:
        raise Http404
    return group_out(group)


@router.get("/roles", response=RoleList, summary="List roles")
def list_roles(request):
    """The organisation's roles and the role groups each combines (needs API Roles read)."""
    require(request, catalog.API_ROLES, catalog.READ)
    return {"items": [role_out(r) for r in _roles(request)]}


@router.get("/roles/{role_id}", response=RoleOut, summary="Read a role")
def get_role(request, role_id: Id):
    require(request, catalog.API_ROLES, catalog.READ)
    role = _roles(request).filter(pk=role_id).first()
    if role is None:
        raise Http404
    return role_out(role)


def find_user(request, ref: int | str):
    """Return the organisation's user by id or username, else 404."""
    from accounts.models import User

    users = User.objects.select_related("owner", "role").filter(owner_id=owner_id(request))
    user = (
        users.filter(pk=ref).first()
        if isinstance(ref, int)
        else users.filter(username__iexact=ref).first()
    )
    if user is None:
        raise Http404
    return user


@router.post("/authz/check", response=AuthzCheckOut, summary="May this user do LEVEL on AREA?")
def authz_check(request, payload: AuthzCheckIn):
    """Answer with the same resolver as the screens (needs API Authorization read).

    Other services of the billing platform ask here instead of copying the portal's rules.
    """
    require(request, catalog.API_AUTHZ, catalog.READ)
    if isinstance(payload.user, int) and not 1 <= payload.user <= MAX_ID:
        raise Http404
    area = catalog.BY_CODE.get(payload.area)
    if area is None:
        raise ValidationError({"area": "Unknown area; see GET /areas."})
    if not area.is_level(payload.level):
        raise ValidationError({"level": f"Choose one of {', '.join(area.levels)}."})
    if area.channel != payload.channel:
        raise ValidationError({"area": f"{area.label} is an area of the {area.channel} channel."})
    user = find_user(request, payload.user)
    decision = permissions.explained(user, payload.channel).explain(area.code)
    return {
        "allowed": area.at_least(decision.level, payload.level),
        "level": decision.level,
        "because": reasons_out(decision),
    }
