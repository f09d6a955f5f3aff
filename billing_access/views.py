"""Project-level views: health check and error pages."""

import sys

from django.db import InterfaceError, OperationalError
from django.shortcuts import render

from ops import endpoints
from portal.access import public

# Answered by ops.middleware before any URL is resolved; routed too, so it has a name.
healthz = public(endpoints.healthz)


def permission_denied(request, exception=None):
    return render(request, "403.html", status=403)


def page_not_found(request, exception=None):
    return render(request, "404.html", status=404)


def server_error(request):
    # Called while the exception is being handled: a database that went away gets the 503 page
    # in the caller's format (the request is worth retrying), anything else the 500 page.
    if isinstance(sys.exception(), OperationalError | InterfaceError):
        return endpoints.database_unavailable(request)
    return render(request, "500.html", status=500)


def bad_request(request, exception=None):
    return render(request, "400.html", status=400)
