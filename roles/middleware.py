"""Resolve the signed-in user's permissions on every request and refuse what is not declared."""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.utils.functional import SimpleLazyObject

from portal.access import requirement_of

from . import catalog, permissions, sod

logger = logging.getLogger(__name__)


class PermissionMiddleware:
    """Attach `request.permissions` and enforce every view's declared requirement (default deny)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.permissions = SimpleLazyObject(
            lambda: permissions.for_user(request.user, catalog.Channel.APPLICATION)
        )
        sod.forget_refusals()
        try:
            return self.get_response(request)
        finally:
            # A change refused by separation of duties rolled back with its transaction; its
            # evidence is written now, whichever door (screen, API, SCIM) showed the refusal.
            sod.flush_refusals()

    def process_view(self, request, view_func, view_args, view_kwargs):
        requirement = requirement_of(view_func)
        if requirement is None:
            logger.error("Refused %s: the view declares no access requirement.", request.path)
            raise PermissionDenied("This page declares no access requirement.")
        if requirement.public:
            return None
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
        # Resolved now for every declared view: hand the page the permissions themselves
        # rather than the lazy wrapper.
        request.permissions = permissions.for_user(request.user, catalog.Channel.APPLICATION)
        area, level = requirement.for_method(request.method)
        if area is not None and not request.permissions.has(area, level):
            raise PermissionDenied(f"Needs {level} on {catalog.get(area).label}.")
        return None
