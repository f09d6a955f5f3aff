"""The AuthZEN 1.0 decision endpoints at /access/v1/ and their discovery document.

A second API beside /api/v1/ with the same bearer tokens, rate limit and error shapes; the
operations are `roles.authzen_api`. `GET /.well-known/authzen-configuration` (public, as the
specification has it) names the endpoints.

Included from the root URLs as `path("access/v1/", include("billing_access.authzen"))`.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.urls import re_path, reverse
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET

from accounts.tokens import services as tokens
from portal.access import public
from roles import authzen_api

from .api import ERROR_HANDLERS, BearerToken, PortalNinjaAPI, _public, not_found


class DecisionToken(BearerToken):
    """The API's bearer token, remembered between a caller's decisions while nothing that
    decides its use changes (`accounts.tokens.services.authenticate_remembered`)."""

    find_token = staticmethod(tokens.authenticate_remembered)


authzen = PortalNinjaAPI(
    title="Billing Access AuthZEN",
    version="1.0",
    description=(
        "OpenID AuthZEN Authorization API 1.0: may this user do LEVEL on AREA? Authenticate "
        "with `Authorization: Bearer <token>`; the token needs API Authorization read."
    ),
    urls_namespace="authzen",
    docs_url=None,
    auth=DecisionToken(),
)
for exception, handler in ERROR_HANDLERS:
    authzen.add_exception_handler(exception, handler)
authzen.add_router("", authzen_api.router)


@public
@require_GET
@cache_control(max_age=3600, public=True)
def configuration(request):
    """The PDP's metadata: where its evaluation endpoints are (AuthZEN section 9)."""
    base = (settings.PUBLIC_URL or request.build_absolute_uri("/")).rstrip("/")
    return JsonResponse(
        {
            "policy_decision_point": base,
            "access_evaluation_endpoint": base + reverse("authzen:evaluation"),
            "access_evaluations_endpoint": base + reverse("authzen:evaluations"),
        }
    )


app_name = "authzen"
urlpatterns = _public(
    [
        *authzen.urls[0],
        re_path(r"^(?P<rest>.*)$", not_found, name="not_found"),
    ]
)
