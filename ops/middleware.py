"""The operations middleware: answers /healthz, /readyz and /metrics itself, and times the rest.

It sits right after the request id, before sessions, authentication and CommonMiddleware's host
check, so probes and scrapes that reach a process by its address are answered cheaply whatever
Host they send. Every other request is timed from here to its response and counted by view name.
"""

from __future__ import annotations

from collections.abc import Callable
from time import perf_counter

from django.http import HttpRequest
from django.http.response import HttpResponseBase

from . import conf, endpoints, metrics

_ENDPOINTS = {
    conf.HEALTHZ: endpoints.healthz,
    conf.READYZ: endpoints.readyz,
    conf.METRICS: endpoints.metrics_view,
}


class OpsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        endpoint = _ENDPOINTS.get(request.path_info)
        if endpoint is not None and request.method in ("GET", "HEAD"):
            return endpoint(request)
        started = perf_counter()
        response = self.get_response(request)
        match = request.resolver_match
        metrics.observe_request(
            match.view_name if match is not None else metrics.UNRESOLVED,
            response.status_code,
            perf_counter() - started,
        )
        return response
