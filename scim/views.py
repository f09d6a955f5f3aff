"""The SCIM 2.0 service provider at /scim/v2/ (RFC 7644): Users, Groups and discovery.

Every view is public to the permission middleware and exempt from CSRF: cookies never
authenticate it; each request carries a SCIM token (`Authorization: Bearer scim_…`) that
names the owner, and every query is scoped to that owner. Errors use the SCIM error format.
"""

from __future__ import annotations

import json
import logging
from functools import wraps

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from scim2_models import (
    Context,
    Error,
    Group,
    ListResponse,
    PatchOp,
    ResponseParameters,
    SCIMException,
    User,
)

from portal.access import public

from . import filters, resources, services, tokens
from .models import ScimGroup
from .services import ScimError

logger = logging.getLogger(__name__)
CONTENT_TYPE = "application/scim+json"
DEFAULT_COUNT = 100
MAX_BODY = 1_000_000


def scim_response(payload, status: int = 200, *, headers=None) -> HttpResponse:
    response = JsonResponse(payload, status=status, content_type=CONTENT_TYPE, safe=False)
    for name, value in (headers or {}).items():
        response[name] = value
    return response


def error_response(status: int, detail: str, scim_type: str | None = None) -> HttpResponse:
    error = Error(status=status, detail=detail, scim_type=scim_type)
    headers = {"WWW-Authenticate": 'Bearer realm="scim"'} if status == 401 else None
    return scim_response(error.model_dump(), status, headers=headers)


def scim_view(methods: set[str]):
    """Authenticate the bearer token, refuse other methods, turn refusals into SCIM errors."""

    def decorate(view):
        @wraps(view)
        def wrapper(request, *args, **kwargs):
            if request.method not in methods:
                return error_response(405, "Method not allowed.")
            header = request.headers.get("Authorization", "")
            scheme, _, raw = header.partition(" ")
            try:
                if scheme.lower() != "bearer":
                    raise tokens.ScimTokenRefused("missing")
                request.scim_token = tokens.authenticate(raw.strip())
            except tokens.ScimTokenRefused:
                return error_response(401, "Missing, invalid, expired or revoked token.")
            try:
                return view(request, *args, **kwargs)
            except ScimError as exc:
                return error_response(exc.status, exc.detail, exc.scim_type)
            except SCIMException as exc:
                error = resources.refusal(exc)
                return error_response(error.status, error.detail, error.scim_type)

        return public(csrf_exempt(wrapper))

    return decorate


def _base(request) -> str:
    return request.build_absolute_uri("/scim/v2").rstrip("/")


def _body(request):
    limit = min(MAX_BODY, settings.DATA_UPLOAD_MAX_MEMORY_SIZE or MAX_BODY)
    try:
        body = request.body
    except RequestDataTooBig as exc:
        raise ScimError(413, f"The request body is over the limit of {limit} bytes.") from exc
    if len(body) > MAX_BODY:
        raise ScimError(413, f"The request body is over the limit of {MAX_BODY} bytes.")
    try:
        data = json.loads(body or b"null")
    except RecursionError as exc:
        raise ScimError(400, "The body nests too deeply.", "invalidSyntax") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScimError(400, "The body is not valid JSON.", "invalidSyntax") from exc
    if _has_nul(data):
        raise ScimError(400, "Text cannot contain the NUL character.", "invalidValue")
    return data


def _has_nul(value) -> bool:
    """Say whether any string in the document holds a NUL (the database cannot store one)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if "\x00" in item:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _page(request) -> tuple[int, int]:
    def number(name: str, default: int) -> int:
        raw = request.GET.get(name)
        if raw in (None, ""):
            return default
        value = resources.parse_id(raw.removeprefix("-")) if raw.isascii() else None
        if value is None:
            raise ScimError(400, f"{name} must be a whole number.", "invalidValue")
        return -value if raw.startswith("-") else value

    start = min(max(number("startIndex", 1), 1), 2**31)
    count = min(max(number("count", DEFAULT_COUNT), 0), resources.MAX_RESULTS)
    return start, count


def _parameters(request, model):
    """Return the `attributes` / `excludedAttributes` the caller asked for, or None."""
    asked = {
        name: request.GET[name]
        for name in ("attributes", "excludedAttributes")
        if request.GET.get(name)
    }
    if not asked:
        return None
    try:
        return ResponseParameters[model].model_validate(asked)
    except (ValueError, TypeError, SCIMException) as exc:
        raise ScimError(
            400, "attributes or excludedAttributes names no attribute.", "invalidValue"
        ) from exc


def _dump(request, resource, ctx=Context.RESOURCE_QUERY_RESPONSE) -> dict:
    parameters = _parameters(request, type(resource))
    return resource.model_dump(scim_ctx=ctx, response_parameters=parameters)


def _list(request, queryset, lookups: dict, to_resource, model) -> HttpResponse:
    text = request.GET.get("filter", "").strip()
    if text:
        queryset = queryset.filter(filters.to_q(text, lookups)).distinct()
    start, count = _page(request)
    total = queryset.count()
    rows = list(queryset.order_by("pk")[start - 1 : start - 1 + count]) if count else []
    base = _base(request)
    listed = ListResponse[User | Group](
        total_results=total,
        start_index=start,
        items_per_page=len(rows),
        resources=[to_resource(row, base) for row in rows],
    )
    parameters = _parameters(request, model)
    return scim_response(
        listed.model_dump(scim_ctx=Context.SEARCH_RESPONSE, response_parameters=parameters)
    )


def _if_match(request) -> int | None:
    return resources.parse_version(request.headers.get("If-Match"))


def _located(resource_dump: dict, status: int = 200) -> HttpResponse:
    meta = resource_dump.get("meta") or {}
    headers = {}
    if meta.get("version"):
        headers["ETag"] = meta["version"]
    if status == 201 and meta.get("location"):
        headers["Location"] = meta["location"]
    return scim_response(resource_dump, status, headers=headers)


# ---------------------------------------------------------------------------------------------
# Users


def _user_or_404(request, pk: str):
    number = resources.parse_id(pk)
    if number is None:
        raise services.not_found()
    user = (
        services.visible_users(request.scim_token.owner)
        .select_related("scim_link")
        .filter(pk=number)
        .first()
    )
    if user is None:
        raise services.not_found()
    return user


@scim_view({"GET", "POST"})
def users(request):
    """List (with filter and paging) or create users."""
    token = request.scim_token
    if request.method == "GET":
        queryset = services.visible_users(token.owner).select_related("scim_link")
        return _list(request, queryset, filters.USER_ATTRIBUTES, resources.user_resource, User)
    resource = resources.parse(
        resources.UserResource, _body(request), Context.RESOURCE_CREATION_REQUEST
    )
    user = services.create_user(token, resources.user_values(resource))
    created = resources.user_resource(user, _base(request))
    return _located(resources.dump(created, Context.RESOURCE_CREATION_RESPONSE), 201)


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def user_detail(request, pk: str):
    """Read, replace, patch or remove one user."""
    token = request.scim_token
    user = _user_or_404(request, pk)
    base = _base(request)
    if request.method == "GET":
        return _located(_dump(request, resources.user_resource(user, base)))
    if request.method == "DELETE":
        services.delete_user(token, user, expected_version=_if_match(request))
        return HttpResponse(status=204)
    if request.method == "PUT":
        resource = resources.parse(
            resources.UserResource, _body(request), Context.RESOURCE_REPLACEMENT_REQUEST
        )
        values = resources.user_values(resource)
    else:
        patch = resources.parse(
            PatchOp[resources.UserResource], _body(request), Context.RESOURCE_PATCH_REQUEST
        )
        current = resources.user_resource(user, base)
        current = resources.parse(
            resources.UserResource,
            current.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE),
            Context.RESOURCE_QUERY_RESPONSE,
        )
        try:
            patch.patch(current)
        except (ValueError, TypeError) as exc:
            raise resources.refusal(exc) from exc
        values = resources.user_values(current)
    user = services.replace_user(token, user, values, expected_version=_if_match(request))
    user = _user_or_404(request, str(user.pk))
    return _located(_dump(request, resources.user_resource(user, base)))


# ---------------------------------------------------------------------------------------------
# Groups


def _group_or_404(request, pk: str) -> ScimGroup:
    group = None
    number = resources.parse_id(pk)
    if number is not None:
        group = ScimGroup.objects.filter(owner=request.scim_token.owner, pk=number).first()
    if group is None:
        raise services.not_found()
    return group


def _member_ids(resource) -> list[str]:
    return [str(m.value) for m in (resource.members or []) if m.value is not None]


@scim_view({"GET", "POST"})
def groups(request):
    """List (with filter and paging) or create groups."""
    token = request.scim_token
    if request.method == "GET":
        queryset = ScimGroup.objects.filter(owner=token.owner).prefetch_related("members")
        return _list(request, queryset, filters.GROUP_ATTRIBUTES, resources.group_resource, Group)
    resource = resources.parse(Group, _body(request), Context.RESOURCE_CREATION_REQUEST)
    group = services.save_group(
        token,
        None,
        display_name=resource.display_name or "",
        external_id=resource.external_id or "",
        member_ids=_member_ids(resource),
    )
    created = resources.group_resource(group, _base(request))
    return _located(resources.dump(created, Context.RESOURCE_CREATION_RESPONSE), 201)


@scim_view({"GET", "PUT", "PATCH", "DELETE"})
def group_detail(request, pk: str):
    """Read, replace, patch (members add/remove) or delete one group."""
    token = request.scim_token
    group = _group_or_404(request, pk)
    base = _base(request)
    if request.method == "GET":
        return _located(_dump(request, resources.group_resource(group, base)))
    if request.method == "DELETE":
        services.delete_group(token, group, expected_version=_if_match(request))
        return HttpResponse(status=204)
    if request.method == "PUT":
        resource = resources.parse(Group, _body(request), Context.RESOURCE_REPLACEMENT_REQUEST)
    else:
        body = resources.member_removals_as_paths(_body(request))
        patch = resources.parse(PatchOp[Group], body, Context.RESOURCE_PATCH_REQUEST)
        resource = resources.group_resource(group, base)
        try:
            patch.patch(resource)
        except (ValueError, TypeError) as exc:
            raise resources.refusal(exc) from exc
    group = services.save_group(
        token,
        group,
        display_name=resource.display_name or "",
        external_id=resource.external_id or "",
        member_ids=_member_ids(resource),
        expected_version=_if_match(request),
    )
    if request.method == "PATCH" and request.GET.get("excludedAttributes") == "members":
        return HttpResponse(status=204)
    return _located(_dump(request, resources.group_resource(group, base)))


# ---------------------------------------------------------------------------------------------
# Discovery


@scim_view({"GET"})
def service_provider_config(request):
    """Say what this service provider supports."""
    return scim_response(resources.dump(resources.service_provider_config(_base(request))))


def _discovery_list(request, items, pk: str | None):
    dumps = [item.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE) for item in items]
    if pk is not None:
        found = next((d for d in dumps if d.get("id") == pk), None)
        if found is None:
            raise services.not_found()
        return scim_response(found)
    return scim_response(
        {
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
            "totalResults": len(dumps),
            "startIndex": 1,
            "itemsPerPage": len(dumps),
            "Resources": dumps,
        }
    )


@scim_view({"GET"})
def resource_types(request, pk: str | None = None):
    """List the resource types (User, Group), or one of them."""
    return _discovery_list(request, resources.resource_types(_base(request)), pk)


@scim_view({"GET"})
def schemas(request, pk: str | None = None):
    """List the schemas of the resources, or one of them."""
    return _discovery_list(request, resources.schemas(_base(request)), pk)


@scim_view({"POST"})
def root_search(request):
    """Searching several resource types at once is not offered (RFC 7644 §3.4.3): 501."""
    raise ScimError(501, "Search Users or Groups on their own endpoint.")


@scim_view({"GET", "POST", "PUT", "PATCH", "DELETE"})
def unknown(request, rest: str = ""):
    """Answer a SCIM 404 for any other path under /scim/v2/."""
    raise services.not_found()
