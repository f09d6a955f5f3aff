"""The operations endpoints, answered by `ops.middleware.OpsMiddleware` before sessions and
authentication, and the page a request gets while the database is away.

- `/healthz`: the process answers (liveness). Touches nothing else: a database outage must not
  make an orchestrator restart healthy processes.
- `/readyz`: the database, the cache and the outbox worker (`ops.readiness`): 200 `ok` or
  `degraded`, 503 `unavailable`. Anonymous callers get the word only; the checks, their times
  and problems need the metrics token or an allowed network.
- `/metrics`: Prometheus text, only with the metrics token (`Authorization: Bearer …`,
  compared in constant time) or from METRICS_ALLOWED_NETWORKS; 403 for anyone else.
"""

from __future__ import annotations

import ipaddress
import secrets

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.template.loader import render_to_string
from django.views.decorators.cache import never_cache

from . import conf, metrics, readiness

RETRY_AFTER_SECONDS = "5"
UNAVAILABLE_MESSAGE = "The service is briefly unavailable. Try again in a few seconds."
SCIM_ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


def may_see_details(request) -> bool:
    """Whether the caller holds the metrics token or calls from an allowed network."""
    token = conf.metrics_token()
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if (
        token
        and scheme.lower() == "bearer"
        and secrets.compare_digest(given.strip().encode(), token.encode())
    ):
        return True
    networks = conf.metrics_networks()
    if not networks:
        return False
    facts = getattr(request, "audit_facts", None)
    address = (facts.ip if facts else None) or request.META.get("REMOTE_ADDR", "")
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


@never_cache
def healthz(request):
    """Answer 200 while the process serves requests (nothing else is checked)."""
    return JsonResponse({"status": "ok"})


@never_cache
def readyz(request: HttpRequest) -> JsonResponse:
    """Answer whether this process can serve: 503 when the database is away."""
    status, checks = readiness.run()
    body: dict = {"status": status}
    if may_see_details(request):
        body["checks"] = checks
    code = 503 if status == readiness.UNAVAILABLE else 200
    response = JsonResponse(body, status=code)
    if code == 503:
        response["Retry-After"] = RETRY_AFTER_SECONDS
    return response


@never_cache
def metrics_view(request):
    """Serve the Prometheus metrics to the token's holder or an allowed network."""
    if not may_see_details(request):
        return HttpResponse("Forbidden\n", status=403, content_type="text/plain")
    return HttpResponse(metrics.exposition(), content_type=metrics.CONTENT_TYPE)


def database_unavailable(request) -> HttpResponse:
    """The answer while the database is away (503, Retry-After), in the caller's format.

    The JSON API and the AuthZEN endpoints get their error shape, SCIM its error document, and
    screens a page drawn without the database (no session, user or menu) and no traceback.
    """
    path = request.path_info
    response: HttpResponse
    if path.startswith(("/api/", "/access/v1/", "/.well-known/")):
        response = JsonResponse(
            {"error": {"code": "unavailable", "message": UNAVAILABLE_MESSAGE}}, status=503
        )
    elif path.startswith("/scim/"):
        response = JsonResponse(
            {"schemas": [SCIM_ERROR], "status": "503", "detail": UNAVAILABLE_MESSAGE},
            status=503,
            content_type="application/scim+json",
        )
    else:
        response = HttpResponse(render_to_string("503.html"), status=503)
    response["Retry-After"] = RETRY_AFTER_SECONDS
    response["Cache-Control"] = "no-store"
    return response
