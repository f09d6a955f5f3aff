"""JSON endpoints of the permission engine: areas, role groups, roles and the authorization check.

Every operation names the API area it needs; `require` checks it against the token's narrowed
API permissions (`request.api_permissions`). Application grants never count here.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Literal

from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Prefetch
from django.http import Http404
from ninja import Field, Path, Query, Router, Schema, Status

from . import catalog, decisions
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
    explain: bool = Field(
        True,
        description=(
            "With false, answer from the permission cache (no query on a hit) and leave "
            "`because` empty: for services that ask on every request."
        ),
    )


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
    User = get_user_model()

    users = User.objects.select_related("owner", "role").filter(owner_id=owner_id(request))
    user = (
        users.filter(pk=ref).first()
        if isinstance(ref, int)
        else users.filter(username__ci=ref).first()
    )
    if user is None:
        raise Http404
    return user


@router.post("/authz/check", response=AuthzCheckOut, summary="May this user do LEVEL on AREA?")
def authz_check(request, payload: AuthzCheckIn):
    """Answer with the same resolver as the screens (needs API Authorization read).

    Other services of the billing platform ask here instead of copying the portal's rules; with
    `explain: false` the answer comes from the same cache as the portal's own pages. The
    AuthZEN endpoints (/access/v1/) answer through the same service.
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
    answer = decisions.decide(user, area.code, payload.level, explain=payload.explain)
    return {
        "allowed": answer.allowed,
        "level": answer.level,
        "because": [{"kind": r.kind, "text": r.text, "level": r.level} for r in answer.because],
    }


# Writes (API Roles write): the same services as the matrix and role screens, the token's user
# as the actor, so nobody hands out more than they hold.

Name = Annotated[str, Field(max_length=120, pattern=r"^[^\x00]*$")]
LongText = Annotated[str, Field(max_length=2000, pattern=r"^[^\x00]*$")]
Version = Annotated[int, Field(ge=1, le=2**31)]
RefId = Annotated[int, Field(ge=1, le=MAX_ID)]
Levels = Annotated[dict[Text, Text], Field(max_length=400)]


class RoleGroupIn(Schema):
    name: Name
    kind: Literal["application", "api"] = "application"
    description: LongText = ""
    grants: Levels = Field(default_factory=dict, description="{area code: level}")
    reason: Name = Field("", description="Why; kept with the change in the audit log.")


class RoleGroupUpdateIn(Schema):
    row_version: Version | None = Field(None, description="The version you read (or If-Match).")
    name: Name | None = None
    description: LongText | None = None
    grants: Levels | None = Field(
        None, description="Cells to set, {area code: level}; none removes; others unchanged."
    )
    reason: Name = ""


class RoleIn(Schema):
    name: Name
    description: LongText = ""
    role_groups: list[RefId] = Field(default_factory=list, max_length=200)
    reason: Name = Field("", description="Why; kept with the change in the audit log.")


class RoleUpdateIn(Schema):
    row_version: Version | None = Field(None, description="The version you read (or If-Match).")
    name: Name | None = None
    description: LongText | None = None
    role_groups: list[RefId] | None = Field(None, max_length=200)
    reason: Name = ""


def expected_version(request, given: int | None) -> int:
    """Return the row_version the caller read: If-Match, else the body; 422 when neither."""
    header = request.headers.get("If-Match", "").strip().removeprefix("W/").strip('"')
    if header:
        try:
            return int(header)
        except ValueError as exc:
            raise ValidationError({"row_version": "If-Match must be a row_version."}) from exc
    if given is None:
        raise ValidationError({"row_version": "Send the row_version you read, or If-Match."})
    return given


def _owned_groups(request, ids) -> list[RoleGroup]:
    ids = list(dict.fromkeys(ids))
    groups = list(RoleGroup.objects.filter(owner_id=owner_id(request), pk__in=ids))
    if len(groups) != len(ids):
        raise ValidationError({"role_groups": "Choose role groups of your organisation."})
    return groups


def _group_or_404(request, group_id: int) -> RoleGroup:
    group = RoleGroup.objects.filter(owner_id=owner_id(request), pk=group_id).first()
    if group is None:
        raise Http404
    return group


def _role_or_404(request, role_id: int) -> Role:
    role = Role.objects.filter(owner_id=owner_id(request), pk=role_id).first()
    if role is None:
        raise Http404
    return role


@router.post("/role-groups", response={201: RoleGroupOut}, summary="Create a role group")
def create_role_group(request, payload: RoleGroupIn):
    """Create a role group with its first grants (needs API Roles write)."""
    from . import services

    require(request, catalog.API_ROLES, catalog.WRITE)
    group = services.create_role_group(
        actor=request.api_user,
        name=payload.name,
        kind=payload.kind,
        description=payload.description,
        grants=payload.grants,
        reason=payload.reason,
    )
    return Status(201, group_out(_groups(request).get(pk=group.pk)))


@router.patch("/role-groups/{group_id}", response=RoleGroupOut, summary="Change a role group")
def update_role_group(request, group_id: Id, payload: RoleGroupUpdateIn):
    """Rename, describe and set matrix cells of a role group, all or nothing (needs API Roles
    write); 409 when it changed since the row_version you read."""
    from django.db import transaction

    from . import services

    require(request, catalog.API_ROLES, catalog.WRITE)
    group = _group_or_404(request, group_id)
    version = expected_version(request, payload.row_version)
    with transaction.atomic():
        if payload.name is not None or payload.description is not None:
            group = services.update_role_group(
                group,
                actor=request.api_user,
                expected_row_version=version,
                name=payload.name if payload.name is not None else group.name,
                description=(
                    payload.description if payload.description is not None else group.description
                ),
                reason=payload.reason,
            )
            version = group.row_version
        if payload.grants:
            services.set_grants(
                group,
                payload.grants,
                actor=request.api_user,
                expected_row_version=version,
                reason=payload.reason,
            )
    return group_out(_groups(request).get(pk=group.pk))


@router.delete("/role-groups/{group_id}", response={204: None}, summary="Delete a role group")
def delete_role_group(request, group_id: Id, reason: Name):
    """Delete a role group that no role or user uses (needs API Roles write); 409 when in use.
    `reason` says why; it is kept with the deletion in the audit log."""
    from . import services

    require(request, catalog.API_ROLES, catalog.WRITE)
    group = _group_or_404(request, group_id)
    version = expected_version(request, None) if "If-Match" in request.headers else None
    services.delete_role_group(
        group, actor=request.api_user, expected_row_version=version, reason=reason
    )
    return Status(204, None)


@router.post("/roles", response={201: RoleOut}, summary="Create a role")
def create_role(request, payload: RoleIn):
    """Create a role combining role groups you may hand out (needs API Roles write)."""
    from . import services

    require(request, catalog.API_ROLES, catalog.WRITE)
    role = services.create_role(
        actor=request.api_user,
        name=payload.name,
        description=payload.description,
        groups=_owned_groups(request, payload.role_groups),
        reason=payload.reason,
    )
    return Status(201, role_out(_roles(request).get(pk=role.pk)))


@router.patch("/roles/{role_id}", response=RoleOut, summary="Change a role")
def update_role(request, role_id: Id, payload: RoleUpdateIn):
    """Rename a role, describe it or replace its role groups (needs API Roles write); 409 when
    it changed since the row_version you read."""
    from . import services

    require(request, catalog.API_ROLES, catalog.WRITE)
    role = _role_or_404(request, role_id)
    version = expected_version(request, payload.row_version)
    services.update_role(
        role,
        actor=request.api_user,
        expected_row_version=version,
        name=payload.name if payload.name is not None else role.name,
        description=payload.description if payload.description is not None else role.description,
        groups=(
            _owned_groups(request, payload.role_groups) if payload.role_groups is not None else None
        ),
        reason=payload.reason,
    )
    return role_out(_roles(request).get(pk=role.pk))


@router.delete("/roles/{role_id}", response={204: None}, summary="Delete a role")
def delete_role(request, role_id: Id, reason: Name):
    """Delete a role that no user holds (needs API Roles write); 409 when in use. `reason` says
    why; it is kept with the deletion in the audit log."""
    from . import services

    require(request, catalog.API_ROLES, catalog.WRITE)
    role = _role_or_404(request, role_id)
    version = expected_version(request, None) if "If-Match" in request.headers else None
    services.delete_role(role, actor=request.api_user, expected_row_version=version, reason=reason)
    return Status(204, None)


# Separation of duties ----------------------------------------------------------------------


class SodPairOut(Schema):
    area: str
    level: str = Field(description="The minimum level that meets this part of the side.")


class SodRuleOut(Schema):
    id: int
    name: str
    description: str
    left: list[SodPairOut]
    left_join: Literal["any", "all"]
    left_text: str = Field(description="The first side as people read it.")
    right: list[SodPairOut]
    right_join: Literal["any", "all"]
    right_text: str
    effect: Literal["block", "exception"] = Field(
        description="block: a change creating a violation is refused; exception: it goes "
        "through only for a person with an approved exception in force."
    )
    row_version: int


class SodRuleList(Schema):
    items: list[SodRuleOut]


class SodViolatorOut(Schema):
    id: int
    username: str
    label: str
    excepted: bool = Field(description="An approved exception in force covers this person.")
    exception_expires_at: datetime.datetime | None


class SodViolationsOut(Schema):
    rule: SodRuleOut
    count: int = Field(description="Everyone holding both sides now.")
    violators: list[SodViolatorOut] = Field(description="The first `limit` of them, by name.")


class SodViolationsList(Schema):
    items: list[SodViolationsOut]


def sod_rule_out(rule) -> dict:
    from . import sod

    return {
        "id": rule.pk,
        "name": rule.name,
        "description": rule.description,
        "left": [{"area": a, "level": lvl} for a, lvl in rule.left],
        "left_join": rule.left_join,
        "left_text": sod.describe_side(rule.left, rule.left_join),
        "right": [{"area": a, "level": lvl} for a, lvl in rule.right],
        "right_join": rule.right_join,
        "right_text": sod.describe_side(rule.right, rule.right_join),
        "effect": rule.effect,
        "row_version": rule.row_version,
    }


@router.get("/sod/rules", response=SodRuleList, summary="List separation-of-duties rules")
def list_sod_rules(request):
    """The organisation's separation-of-duties rules (needs API Roles read)."""
    from .models import SodRule

    require(request, catalog.API_ROLES, catalog.READ)
    return {"items": [sod_rule_out(r) for r in SodRule.objects.filter(owner_id=owner_id(request))]}


@router.get(
    "/sod/violations",
    response=SodViolationsList,
    summary="Who violates each separation-of-duties rule now",
)
def list_sod_violations(
    request,
    rule: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Annotated[int, Query(ge=0, le=1000)] = 200,
):
    """Per rule (or only `rule`), everyone holding both sides now (standing access and
    elevations in force), whether an exception in force covers them, and how many there are
    (needs API Roles read)."""
    from django.utils import timezone

    from . import sod
    from .models import SodException, SodRule

    require(request, catalog.API_ROLES, catalog.READ)
    now = timezone.now()
    rules = SodRule.objects.filter(owner_id=owner_id(request))
    if rule is not None:
        rules = rules.filter(pk=rule)
        if not rules.exists():
            raise Http404
    covering: dict[tuple[int, int], datetime.datetime] = {}
    for rule_id, user_id, ends in (
        SodException.objects.filter(owner_id=owner_id(request))
        .in_force(now)
        .values_list("rule_id", "user_id", "expires_at")
    ):
        covering[(rule_id, user_id)] = max(ends, covering.get((rule_id, user_id), ends))
    wanted = {r.pk for r in rules}
    sections = [
        s for s in sod.report(request.api_user.owner, now=now, rows=limit) if s.rule.pk in wanted
    ]
    items = []
    for section in sections:
        found, shown = section.rule, section.users
        items.append(
            {
                "rule": sod_rule_out(found),
                "count": section.total,
                "violators": [
                    {
                        "id": u.pk,
                        "username": u.username,
                        "label": u.label,
                        "excepted": (found.pk, u.pk) in covering,
                        "exception_expires_at": covering.get((found.pk, u.pk)),
                    }
                    for u in shown
                ],
            }
        )
    return {"items": items}
