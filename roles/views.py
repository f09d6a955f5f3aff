"""Screens of the permission engine."""

from __future__ import annotations

from django.shortcuts import render

from . import catalog, permissions
from .access import signed_in


@signed_in
def my_access(request):
    """List the signed-in person's effective permissions, with the reason for each level."""
    effective = permissions.explained(request.user, catalog.Channel.APPLICATION)
    api = None
    if request.user.has_api_access:
        api = permissions.explained(request.user, catalog.Channel.API)
    return render(
        request,
        "roles/my_access.html",
        {
            "effective": effective,
            "granted": effective.granted(),
            "api_granted": api.granted() if api else [],
            "category_labels": catalog.Category.LABELS,
        },
    )
