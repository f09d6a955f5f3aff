"""Screens of API tokens: your own tokens, an API user's tokens, the owner's inventory, revoke."""

from __future__ import annotations

import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from portal.access import requires, signed_in
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from portal.redirects import safe_next
from roles import catalog
from roles.guards import EscalationRefused

from ..choices import UserKind
from ..models import User
from . import services
from .forms import TokenCreateForm, TokenFilterForm
from .models import ApiToken


def _create_or_list(request, subject, *, template: str, extra: dict):
    """Show `subject`'s tokens with a creation form; on a valid POST show the new token once."""
    may_create = services.can_manage_tokens_of(request.user, subject)
    form = None
    status = 200
    if may_create:
        form = TokenCreateForm(request.POST or None, subject=subject)
        if request.method == "POST":
            if form.is_valid():
                data = form.cleaned_data
                try:
                    token, text = services.create_token(
                        subject,
                        actor=request.user,
                        name=data["name"],
                        expires_at=timezone.now() + datetime.timedelta(days=data["lifetime_days"]),
                        read_only=data["read_only"],
                        areas=data["areas"],
                        allowed_networks=data["allowed_networks"],
                        reason="",
                    )
                except (EscalationRefused, ValidationError) as exc:
                    apply_service_errors(form, exc)
                else:
                    response = render(
                        request,
                        "tokens/token_created.html",
                        {"token": token, "text": text, "back_url": request.path, **extra},
                        status=201,
                    )
                    response["Cache-Control"] = "no-store"
                    return response
            status = 400
    elif request.method == "POST":
        raise PermissionDenied("You cannot create tokens for this user.")
    rows = subject.api_tokens.select_related("created_by", "revoked_by")
    context = {
        "subject": subject,
        "form": form,
        "tokens": rows,
        "now": timezone.now(),
        "next": request.path,
        **extra,
    }
    return render(request, template, context, status=status)


@signed_in
def my_tokens(request):
    """List the signed-in person's API tokens and create one (people with API access only)."""
    if not services.may_use_api(request.user):
        raise PermissionDenied("Only people with API access have API tokens.")
    return _create_or_list(
        request, request.user, template="tokens/my_tokens.html", extra={"own": True}
    )


@requires(catalog.USERS, catalog.FULL)
def user_tokens(request, pk: int):
    """List a user's API tokens; create one for an API user."""
    subject = get_owned_or_404(request.user, User.objects.select_related("owner"), pk)
    return _create_or_list(
        request,
        subject,
        template="tokens/my_tokens.html",
        extra={"own": subject.pk == request.user.pk, "is_api_user": subject.kind == UserKind.API},
    )


@requires(catalog.USERS, catalog.FULL)
def token_list(request):
    """List every API token of the owner: its user, scope, age, last use, expiry; revoke."""
    filters = TokenFilterForm(request.GET or None)
    rows = ApiToken.objects.for_owner(request.user.owner).select_related("user", "created_by")
    now = timezone.now()
    state = "active"
    if filters.is_valid():
        state = filters.cleaned_data["state"] if "state" in request.GET else "active"
        q = filters.cleaned_data["q"].strip()
        if q:
            rows = rows.filter(
                Q(name__icontains=q)
                | Q(prefix__istartswith=q.removeprefix("ba_"))
                | Q(user__username__icontains=q)
                | Q(user__display_name__icontains=q)
                | Q(user__last_name__icontains=q)
            )
    if state == "active":
        rows = rows.filter(revoked_at__isnull=True, expires_at__gt=now)
    elif state == "expired":
        rows = rows.filter(revoked_at__isnull=True, expires_at__lte=now)
    elif state == "revoked":
        rows = rows.filter(revoked_at__isnull=False)
    page = Paginator(rows.order_by("user__username", "-created_at", "-id"), 50).get_page(
        request.GET.get("page")
    )
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "tokens/token_list.html",
        {
            "filters": filters if filters.is_bound else TokenFilterForm(initial={"state": state}),
            "page": page,
            "tokens": page.object_list,
            "query": query.urlencode(),
            "now": now,
            "next": request.get_full_path(),
        },
    )


@signed_in
def token_revoke(request, pk: int):
    """Confirm and revoke a token: your own, or any of your organisation's as an administrator."""
    token = ApiToken.objects.select_related("user__owner").filter(pk=pk).first()
    own = token is not None and token.user_id == request.user.pk
    administers = (
        token is not None
        and token.user.owner_id == request.user.owner_id
        and services.administers_tokens(request.user)
    )
    if not (own or administers):
        raise Http404("Not found.")
    fallback = (
        reverse("tokens:my_tokens")
        if token.user_id == request.user.pk
        else reverse("tokens:user_tokens", args=[token.user_id])
    )
    next_url = safe_next(request, fallback)
    error = ""
    if request.method == "POST":
        try:
            services.revoke_token(token, actor=request.user, reason="")
        except (ValidationError, PermissionDenied) as exc:
            error = exc.messages[0] if isinstance(exc, ValidationError) else str(exc)
        else:
            messages.success(request, f"Token {token.label} revoked: it stops working at once.")
            return redirect(next_url)
    return render(
        request,
        "tokens/token_revoke.html",
        {
            "title": "Revoke API token",
            "question": f"Revoke the token {token.label} of {token.user.label}?",
            "consequences": [
                "Every request with this token is refused from now on (401).",
                "This cannot be undone: the integration needs a new token.",
            ],
            "confirm_label": "Revoke token",
            "cancel_url": next_url,
            "next": next_url,
            "error": error,
        },
        status=400 if error else 200,
    )
