"""The JSON API at /api/v1/: bearer tokens only, JSON errors, a rate limit per token.

Each app contributes a router (`accounts.api`, `roles.api`, `roles.elevation_api`, `audit.api`);
this module assembles them, authenticates every operation with `Authorization: Bearer ba_…`
(session cookies never count, so no CSRF is involved), turns every refusal into `{"error":
{"code", "message", "fields"}}`, and serves the OpenAPI document and a self-hosted docs page (no
CDN, strict CSP).

Included from the root URLs as `path("api/v1/", include("billing_access.api"))`.
"""

from __future__ import annotations

import math
import time
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import (
    ImproperlyConfigured,
    PermissionDenied,
    RequestDataTooBig,
    ValidationError,
)
from django.http import Http404, JsonResponse
from django.shortcuts import render
from django.urls import path, re_path
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from accounts import api as accounts_api
from accounts.tokens import services as tokens
from audit import api as audit_api
from portal.access import ATTRIBUTE, PUBLIC
from portal.requests import client_ip
from roles import api as roles_api
from roles import elevation_api
from roles.guards import EscalationRefused

# Service refusals that mean "the record is not as you thought": a stale version, still in use.
CONFLICT_CODES = {"stale", "record_changed", "in_use"}
UNAUTHENTICATED = "Missing, invalid, expired or revoked token."
RATE_UNITS = {"second": 1, "minute": 60, "hour": 3600}


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        super().__init__("Too many requests with this token: slow down.")
        self.retry_after = retry_after


class Conflict(Exception):
    """The record changed since the caller read it (row_version / If-Match)."""

    def __init__(self, message: str, *, current_row_version: int | None = None):
        super().__init__(message)
        self.current_row_version = current_row_version


def rate_limit() -> tuple[int, int]:
    """Return (requests, seconds) from API_RATE_LIMIT, such as "600/minute"."""
    raw = str(getattr(settings, "API_RATE_LIMIT", "600/minute"))
    try:
        count, unit = raw.split("/", 1)
        return int(count), RATE_UNITS[unit.strip().lower().removesuffix("s")]
    except (ValueError, KeyError) as exc:
        raise ImproperlyConfigured(
            f"API_RATE_LIMIT must read like 600/minute (second, minute or hour), not {raw!r}."
        ) from exc


def check_rate(token, *, now: float | None = None) -> None:
    """Count a request of `token` in the current fixed window; raise RateLimited past the limit."""
    limit, period = rate_limit()
    if limit <= 0:
        return
    now = time.time() if now is None else now
    window = int(now // period)
    key = f"api-rate:{token.pk}:{window}"
    cache.add(key, 0, period + 5)
    try:
        count = cache.incr(key)
    except ValueError:  # evicted between add and incr
        cache.set(key, 1, period + 5)
        count = 1
    if count > limit:
        raise RateLimited(max(1, math.ceil((window + 1) * period - now)))


class BearerToken(HttpBearer):
    """`Authorization: Bearer ba_<prefix>_<secret>` → request.auth, api_user, api_permissions."""

    # How the token is found and checked (the decision endpoints remember theirs).
    find_token = staticmethod(tokens.authenticate)

    def authenticate(self, request, token: str):
        try:
            api_token = self.find_token(token.strip(), ip=client_ip(request))
        except tokens.TokenRefused:
            return None
        check_rate(api_token)
        request.api_token = api_token
        request.api_user = api_token.user
        request.api_permissions = tokens.effective_permissions(api_token)
        return api_token


class PortalNinjaAPI(NinjaAPI):
    """Adds the standard error responses to every operation of the OpenAPI document."""

    def get_openapi_schema(self, *, path_prefix=None, path_params=None):
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Error"] = ERROR_SCHEMA
        ref = {"$ref": "#/components/schemas/Error"}
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                responses = {str(k): v for k, v in operation.get("responses", {}).items()}
                operation["responses"] = responses
                writes = method in {"post", "put", "patch", "delete"}
                codes = ERROR_CODES_WRITE if writes else ERROR_CODES_READ
                for code in codes:
                    headers = {}
                    if code == 429:
                        headers = {"Retry-After": {"schema": {"type": "integer"}}}
                    responses.setdefault(
                        str(code),
                        {
                            "description": ERROR_DESCRIPTIONS[code],
                            "content": {"application/json": {"schema": ref}},
                            **({"headers": headers} if headers else {}),
                        },
                    )
        return schema


ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "fields": {"type": "object", "additionalProperties": {"type": "string"}},
                "current_row_version": {"type": "integer"},
                "areas": {
                    "type": "array",
                    "items": {"type": "string"},
                    "description": "escalation_refused: every area asked for above the caller's "
                    "own level (the message names the nearest few).",
                },
            },
        }
    },
}
ERROR_DESCRIPTIONS = {
    400: "The request body is not valid JSON.",
    401: "No token, or a token that is invalid, expired, revoked or used from elsewhere.",
    403: "The token's user lacks the API level this operation needs.",
    404: "Not found, or not of your organisation.",
    409: "The record changed since you read it.",
    413: "The request body is over the size limit (the message says the limit).",
    422: "Invalid input; `fields` says what is wrong with each field.",
    429: "Too many requests with this token; retry after `Retry-After` seconds.",
}
ERROR_CODES_READ = (401, 403, 404, 422, 429)
ERROR_CODES_WRITE = (400, 401, 403, 404, 409, 413, 422, 429)

api = PortalNinjaAPI(
    title="Billing Access API",
    version="1",
    description=(
        "The JSON API of Billing Access. Authenticate every request with "
        "`Authorization: Bearer <token>`; a token reaches at most its user's API permissions."
    ),
    urls_namespace="api",
    docs_url=None,
    auth=BearerToken(),
)
api.add_router("", accounts_api.router)
api.add_router("", roles_api.router)
api.add_router("", elevation_api.router)
api.add_router("", audit_api.router)


def error(request, status: int, code: str, message: str, **extra) -> Any:
    body = {"error": {"code": code, "message": message, **extra}}
    return api.create_response(request, body, status=status)


@api.exception_handler(AuthenticationError)
def _unauthenticated(request, exc):
    response = error(request, 401, "unauthenticated", UNAUTHENTICATED)
    response["WWW-Authenticate"] = 'Bearer realm="billing-access"'
    return response


@api.exception_handler(RateLimited)
def _rate_limited(request, exc):
    response = error(request, 429, "rate_limited", str(exc))
    response["Retry-After"] = str(exc.retry_after)
    return response


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    if isinstance(exc, EscalationRefused):
        extra = {"areas": exc.details} if exc.shortfalls else {}
        return error(request, 403, "escalation_refused", str(exc) or "Not allowed.", **extra)
    return error(request, 403, "forbidden", str(exc) or "Not allowed.")


@api.exception_handler(Http404)
def _not_found(request, exc):
    return error(request, 404, "not_found", "Not found.")


@api.exception_handler(Conflict)
def _conflict(request, exc):
    extra = {}
    if exc.current_row_version is not None:
        extra["current_row_version"] = exc.current_row_version
    return error(request, 409, "conflict", str(exc), **extra)


# Pydantic names the member of a union that failed ("int", "constrained-str", "list[int]",
# "function-after[…]") in the error's location; a caller knows the field, not our types.
_TYPE_TAGS = frozenset(
    {"int", "str", "float", "bool", "bytes", "decimal", "list", "dict", "set", "tuple", "none"}
)
# What a caller is asked for, by pydantic error type; other errors keep pydantic's message,
# which already speaks of the value (limits, lengths, choices).
_PLAIN = {
    "missing": "This field is required.",
    "int_type": "Enter a whole number.",
    "int_parsing": "Enter a whole number.",
    "int_from_float": "Enter a whole number.",
    "float_type": "Enter a number.",
    "float_parsing": "Enter a number.",
    "decimal_type": "Enter a number.",
    "decimal_parsing": "Enter a number.",
    "string_type": "Enter text.",
    "bool_type": "Enter true or false.",
    "bool_parsing": "Enter true or false.",
    "list_type": "Enter a list.",
    "dict_type": "Enter an object.",
    "model_type": "Enter an object.",
    "model_attributes_type": "Enter an object.",
    "date_type": "Enter a date as YYYY-MM-DD.",
    "date_parsing": "Enter a date as YYYY-MM-DD.",
    "date_from_datetime_parsing": "Enter a date as YYYY-MM-DD.",
    "datetime_type": "Enter a date and time (ISO 8601).",
    "datetime_parsing": "Enter a date and time (ISO 8601).",
    "datetime_from_date_parsing": "Enter a date and time (ISO 8601).",
    "json_invalid": "The body is not valid JSON.",
}


def _is_type_tag(part) -> bool:
    text = str(part)
    return text in _TYPE_TAGS or "-" in text or "[" in text


def _field_name(loc) -> str:
    """Return the caller's name of the field an error is about: its path in the body or the
    query, list positions kept ("evaluations.0.resource"), union members left out."""
    parts = [str(p) for p in loc if not _is_type_tag(p)]
    if parts and parts[0] == "body":
        parts = parts[2:] if len(parts) > 2 else parts[1:]
    elif parts:
        parts = parts[1:]
    return ".".join(parts) or "__all__"


def _plain_message(item) -> str:
    return _PLAIN.get(str(item.get("type", "")), str(item.get("msg", "Invalid value.")))[:300]


def _either(messages: list[str]) -> str:
    """Join what each member of a union asked for: "Enter a whole number or text."."""
    if len(messages) == 1:
        return messages[0]
    asks = [m.removesuffix(".") for m in messages]
    rest = [a.removeprefix("Enter ") if a.startswith("Enter ") else a for a in asks[1:]]
    return f"{asks[0]} or {' or '.join(rest)}."


@api.exception_handler(NinjaValidationError)
def _invalid(request, exc):
    found: dict[str, list[str]] = {}
    for item in exc.errors:
        messages = found.setdefault(_field_name(item.get("loc", ())), [])
        message = _plain_message(item)
        if message not in messages:
            messages.append(message)
    fields = {name: _either(messages) for name, messages in found.items()}
    return error(request, 422, "invalid", "Some fields are invalid.", fields=fields)


@api.exception_handler(ValidationError)
def _invalid_domain(request, exc):
    current = getattr(exc, "current_row_version", None)
    if current is not None:
        return error(request, 409, "conflict", exc.messages[0], current_row_version=int(current))
    if getattr(exc, "code", None) in CONFLICT_CODES:
        return error(request, 409, str(exc.code), exc.messages[0])
    if hasattr(exc, "error_dict"):
        fields = {
            name: " ".join(ValidationError(errs).messages) for name, errs in exc.error_dict.items()
        }
        return error(request, 422, "invalid", "Some fields are invalid.", fields=fields)
    return error(request, 422, "invalid", " ".join(exc.messages))


@api.exception_handler(RequestDataTooBig)
def _too_large(request, exc):
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    return error(request, 413, "too_large", f"The request body is over the limit of {limit} bytes.")


@api.exception_handler(HttpError)
def _http_error(request, exc):
    code = {400: "bad_request", 405: "method_not_allowed"}.get(exc.status_code, "error")
    return error(request, exc.status_code, code, str(exc))


# The same error shapes for every API this project serves (the AuthZEN endpoints reuse them).
ERROR_HANDLERS = (
    (AuthenticationError, _unauthenticated),
    (RateLimited, _rate_limited),
    (PermissionDenied, _forbidden),
    (Http404, _not_found),
    (Conflict, _conflict),
    (NinjaValidationError, _invalid),
    (ValidationError, _invalid_domain),
    (HttpError, _http_error),
    (RequestDataTooBig, _too_large),
)


def _body_name(operation) -> str:
    schema = (operation.get("requestBody", {}).get("content", {}).get("application/json", {})).get(
        "schema", {}
    )
    return schema.get("$ref", "").rsplit("/", 1)[-1] or ("JSON" if schema else "")


def docs(request):
    """List the API's operations from its own OpenAPI document (no third-party assets)."""
    schema = api.get_openapi_schema(path_prefix=request.path.removesuffix("docs"))
    operations = []
    for route, methods in schema.get("paths", {}).items():
        for method, operation in methods.items():
            operations.append(
                {
                    "method": method.upper(),
                    "path": route,
                    "summary": operation.get("summary", ""),
                    "description": operation.get("description", ""),
                    "tag": (operation.get("tags") or [""])[0],
                    "parameters": operation.get("parameters", []),
                    "body": _body_name(operation),
                    "responses": sorted(operation.get("responses", {})),
                }
            )
    return render(
        request,
        "api/docs.html",
        {
            "schema": schema,
            "operations": operations,
            "openapi_url": request.path.removesuffix("docs") + "openapi.json",
        },
    )


def not_found(request, rest=""):
    return JsonResponse({"error": {"code": "not_found", "message": "Not found."}}, status=404)


def _public(patterns):
    """Mark the API's views public for the portal's middleware: the API checks its own token
    and each operation's API area, and never looks at the session."""
    for pattern in patterns:
        if hasattr(pattern, "url_patterns"):
            _public(pattern.url_patterns)
        else:
            setattr(pattern.callback, ATTRIBUTE, PUBLIC)
    return patterns


app_name = "api"
urlpatterns = _public(
    [
        path("docs", docs, name="docs"),
        *api.urls[0],
        re_path(r"^(?P<rest>.*)$", not_found, name="not_found"),
    ]
)
