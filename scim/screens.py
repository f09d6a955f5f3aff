"""The administrators' screen of SCIM provisioning: tokens (create, shown once; revoke)."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from portal.access import requires
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from roles import catalog

from . import tokens
from .forms import ScimTokenForm
from .models import ScimToken


def _base_url(request) -> str:
    return request.build_absolute_uri("/scim/v2")


@requires(catalog.PARAMETERS, catalog.FULL)
def token_list(request):
    """List the owner's SCIM tokens with the base URL; create one (shown once)."""
    owner = request.user.owner
    form = ScimTokenForm(request.POST or None, owner=owner)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            try:
                token, text = tokens.create_token(
                    actor=request.user,
                    name=data["name"],
                    expires_at=timezone.now() + datetime.timedelta(days=data["lifetime_days"]),
                    provider=data["provider"],
                    reason="",
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                response = render(
                    request,
                    "scim/token_created.html",
                    {"token": token, "text": text, "base_url": _base_url(request)},
                    status=201,
                )
                response["Cache-Control"] = "no-store"
                return response
        status = 400
    rows = ScimToken.objects.filter(owner=owner).select_related(
        "provider", "created_by", "revoked_by"
    )
    return render(
        request,
        "scim/token_list.html",
        {"form": form, "tokens": rows, "now": timezone.now(), "base_url": _base_url(request)},
        status=status,
    )


@requires(catalog.PARAMETERS, catalog.FULL)
def token_revoke(request, pk: int):
    """Confirm and revoke a SCIM token: the identity provider's next request answers 401."""
    token = get_owned_or_404(request.user, ScimToken.objects.all(), pk)
    back = reverse("scim:tokens")
    error = ""
    if request.method == "POST":
        try:
            tokens.revoke_token(token, actor=request.user, reason="")
        except ValidationError as exc:
            error = exc.messages[0]
        else:
            messages.success(request, f"Token {token.label} revoked: it stops working at once.")
            return redirect(back)
    return render(
        request,
        "tokens/token_revoke.html",
        {
            "title": "Revoke SCIM token",
            "question": f"Revoke the SCIM token {token.label}?",
            "consequences": [
                "The identity provider can no longer create, change or remove anyone (401).",
                "People already provisioned keep their accounts as they are.",
                "This cannot be undone: the identity provider needs a new token.",
            ],
            "confirm_label": "Revoke token",
            "cancel_url": back,
            "next": back,
            "error": error,
        },
        status=400 if error else 200,
    )
