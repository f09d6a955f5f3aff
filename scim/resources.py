"""Portal rows ↔ SCIM resources (scim2-models), and the discovery documents.

The published schemas list only what the portal keeps: a person's userName, name, displayName,
emails, active, externalId and groups; a group's displayName, externalId and members.
"""

from __future__ import annotations

import re

from pydantic import ValidationError as PydanticError
from scim2_models import (
    AuthenticationScheme,
    Bulk,
    ChangePassword,
    Context,
    Email,
    EnterpriseUser,
    ETag,
    Filter,
    Group,
    GroupMember,
    GroupMembership,
    Meta,
    Name,
    Patch,
    Required,
    ResourceType,
    SCIMException,
    ServiceProviderConfig,
    Sort,
    User,
)

from .models import ScimGroup
from .services import ScimError, UserValues

UserResource = User[EnterpriseUser]
MAX_RESULTS = 200
USER_ATTRIBUTES = {"userName", "name", "displayName", "active", "emails", "groups"}
NAME_ATTRIBUTES = {"formatted", "familyName", "givenName"}
EMAIL_ATTRIBUTES = {"value", "type", "primary"}
GROUP_ATTRIBUTES = {"displayName", "members"}
MEMBER_ATTRIBUTES = {"value", "display", "type", "$ref"}


def version_of(row_version: int) -> str:
    return f'W/"{row_version}"'


def parse_version(header: str | None) -> int | None:
    """Return the row version an If-Match header names; None when absent or `*`."""
    text = (header or "").strip()
    if not text or text == "*":
        return None
    version = parse_id(text.removeprefix("W/").strip('"'))
    if version is None:
        raise ScimError(412, "The If-Match header does not name a version of this resource.")
    return version


_ID = re.compile(r"[0-9]{1,18}")


def parse_id(text: str) -> int | None:
    """Return the number an id or version names: ASCII digits only, within a 64-bit column
    ("١٢" or "²" or twenty digits name nothing, rather than failing further in)."""
    return int(text) if isinstance(text, str) and _ID.fullmatch(text) else None


def refusal(exc: Exception) -> ScimError:
    """Turn a scim2-models or pydantic refusal into a SCIM error."""
    if isinstance(exc, SCIMException):
        return ScimError(int(exc.status), str(exc.detail or exc), exc.scim_type)
    if isinstance(exc, PydanticError):
        for error in exc.errors():
            original = (error.get("ctx") or {}).get("error")
            if isinstance(original, SCIMException):
                return refusal(original)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return ScimError(400, f"Invalid value at {where or 'the body'}.", "invalidValue")
    return ScimError(400, "The request body is not valid.", "invalidSyntax")


def parse(model, payload, ctx: Context):
    """Validate a request body against a scim2-models model, or raise a SCIM error."""
    if not isinstance(payload, dict):
        raise ScimError(400, "The body must be a JSON object.", "invalidSyntax")
    try:
        return model.model_validate(payload, scim_ctx=ctx)
    except (PydanticError, SCIMException, ValueError, TypeError) as exc:
        raise refusal(exc) from exc


def _meta(kind: str, obj, location: str) -> Meta:
    return Meta(
        resource_type=kind,
        created=obj.created_at,
        last_modified=obj.updated_at,
        location=location,
        version=version_of(obj.row_version),
    )


def user_resource(user, base: str) -> User:
    link = getattr(user, "scim_link", None) if hasattr(user, "scim_link") else None
    groups = [
        GroupMembership(value=str(g.pk), display=g.display_name, type="direct")
        for g in ScimGroup.objects.filter(owner_id=user.owner_id, members=user)
    ]
    formatted = " ".join(p for p in (user.first_name, user.last_name) if p)
    return User(
        id=str(user.pk),
        external_id=(link.external_id if link is not None else "") or None,
        user_name=user.username,
        name=Name(
            given_name=user.first_name or None,
            family_name=user.last_name or None,
            formatted=formatted or None,
        ),
        display_name=user.display_name or None,
        active=user.allow_login,
        emails=[_email(user.email)] if user.email else None,
        groups=groups or None,
        meta=_meta("User", user, f"{base}/Users/{user.pk}"),
    )


def _email(address: str) -> Email:
    # Stored addresses were validated on their way in; do not re-judge their domains here.
    return Email.model_construct(value=address, type=Email.Type.work, primary=True)


def group_resource(group: ScimGroup, base: str) -> Group:
    members = [
        GroupMember(value=str(u.pk), display=u.username, type="User")
        for u in group.members.order_by("username")
    ]
    return Group(
        id=str(group.pk),
        external_id=group.external_id or None,
        display_name=group.display_name,
        members=members or None,
        meta=_meta("Group", group, f"{base}/Groups/{group.pk}"),
    )


def dump(resource, ctx: Context = Context.RESOURCE_QUERY_RESPONSE) -> dict:
    return resource.model_dump(scim_ctx=ctx)


def _primary_email(resource) -> str:
    emails = resource.emails or []
    chosen = next((e for e in emails if e.primary and e.value), None)
    chosen = chosen or next((e for e in emails if e.value), None)
    if chosen is not None:
        return str(chosen.value)
    if resource.user_name and "@" in resource.user_name:
        return resource.user_name
    return ""


def user_values(resource) -> UserValues:
    """Return the portal's values from a SCIM User; refuse what the portal cannot keep."""
    username = (resource.user_name or "").strip()
    if not username:
        raise ScimError(400, "userName is required.", "invalidValue")
    if len(username) > 150:
        raise ScimError(400, "userName is longer than 150 characters.", "invalidValue")
    email = _primary_email(resource).strip()
    if not email or "@" not in email or len(email) > 254:
        raise ScimError(400, "A valid email address is required (emails).", "invalidValue")
    name = resource.name
    active = resource.active
    return UserValues(
        username=username,
        email=email,
        first_name=((name.given_name if name else None) or "")[:150],
        last_name=((name.family_name if name else None) or "")[:150],
        display_name=(resource.display_name or "")[:200],
        external_id=(resource.external_id or "")[:300],
        active=bool(active) if active is not None else None,
    )


def member_removals_as_paths(payload):
    """Rewrite Entra ID's `{"op": "Remove", "path": "members", "value": [{"value": id}]}`
    into `members[value eq "id"]` removals: RFC 7644 would read the first as "remove everyone".
    """
    if not isinstance(payload, dict) or not isinstance(payload.get("Operations"), list):
        return payload
    operations = []
    for operation in payload["Operations"]:
        if (
            isinstance(operation, dict)
            and str(operation.get("op", "")).lower() == "remove"
            and str(operation.get("path", "")).lower() == "members"
            and isinstance(operation.get("value"), list)
        ):
            for member in operation["value"]:
                value = member.get("value") if isinstance(member, dict) else None
                if not isinstance(value, str) or '"' in value or "\\" in value:
                    raise ScimError(400, "Name each member to remove by its id.", "invalidValue")
                operations.append({"op": "remove", "path": f'members[value eq "{value}"]'})
        else:
            operations.append(operation)
    return {**payload, "Operations": operations}


# ---------------------------------------------------------------------------------------------
# Discovery


def service_provider_config(base: str) -> ServiceProviderConfig:
    return ServiceProviderConfig(
        documentation_uri=None,
        patch=Patch(supported=True),
        bulk=Bulk(supported=False, max_operations=0, max_payload_size=0),
        filter=Filter(supported=True, max_results=MAX_RESULTS),
        change_password=ChangePassword(supported=False),
        sort=Sort(supported=False),
        etag=ETag(supported=True),
        authentication_schemes=[
            AuthenticationScheme(
                type="oauthbearertoken",
                name="Bearer token",
                description="A SCIM token created on Settings → Provisioning (SCIM).",
                primary=True,
            )
        ],
        meta=Meta(resource_type="ServiceProviderConfig", location=f"{base}/ServiceProviderConfig"),
    )


def _trim(schema, keep: set[str], nested: dict[str, set[str]]):
    attributes = []
    for attribute in schema.attributes:
        if attribute.name not in keep:
            continue
        if attribute.name in nested and attribute.sub_attributes:
            attribute.sub_attributes = [
                s for s in attribute.sub_attributes if s.name in nested[attribute.name]
            ]
        attributes.append(attribute)
    schema.attributes = attributes
    return schema


def schemas(base: str) -> list:
    user = _trim(
        User.to_schema(),
        USER_ATTRIBUTES,
        {"name": NAME_ATTRIBUTES, "emails": EMAIL_ATTRIBUTES, "groups": MEMBER_ATTRIBUTES},
    )
    for attribute in user.attributes:
        if attribute.name == "emails":
            attribute.required = Required.true  # the portal needs an address for everyone
            for sub in attribute.sub_attributes or ():
                if sub.name == "value":
                    sub.required = Required.true
    group = _trim(Group.to_schema(), GROUP_ATTRIBUTES, {"members": MEMBER_ATTRIBUTES})
    for schema in (user, group):
        schema.meta = Meta(resource_type="Schema", location=f"{base}/Schemas/{schema.id}")
    return [user, group]


def resource_types(base: str) -> list[ResourceType]:
    types = []
    for model in (User, Group):
        resource_type = ResourceType.from_resource(model)
        resource_type.meta = Meta(
            resource_type="ResourceType", location=f"{base}/ResourceTypes/{resource_type.id}"
        )
        types.append(resource_type)
    return types
