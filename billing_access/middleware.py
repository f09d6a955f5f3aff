"""Project-wide middleware: a request id on every request, response, log line and audit event."""

from __future__ import annotations

import os
import re

from django.conf import settings

from audit import context as audit_context
from portal.requests import client_ip

from .logging import request_id_var

_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


class RequestIdMiddleware:
    """Give each request an id (kept from a trusted proxy's X-Request-ID when well formed)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        trust_incoming = getattr(settings, "TRUSTED_PROXY_COUNT", 0) > 0
        if trust_incoming and _VALID_REQUEST_ID.match(incoming):
            request_id = incoming
        else:
            request_id = os.urandom(16).hex()  # 32 hex digits, as uuid4().hex, without a UUID
        request.request_id = request_id
        facts = audit_context.RequestFacts(
            request_id=request_id,
            ip=client_ip(request),
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:400],
        )
        request.audit_facts = facts
        token = audit_context.set_current(facts)
        log_token = request_id_var.set(request_id)
        try:
            response = self.get_response(request)
        finally:
            audit_context.reset(token)
            request_id_var.reset(log_token)
        response["X-Request-ID"] = request_id
        return response
