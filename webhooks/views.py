"""Screens of webhook endpoints: list, create (secret shown once), detail with recent
deliveries and "send again", edit, delete, "send a test event", and rotating the signing
secret (the new one shown once) with "finish rotation"."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from portal.access import requires
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from roles import catalog

from . import events, services
from .forms import EndpointForm, FinishRotationForm, RemoveEndpointForm, RotateSecretForm
from .models import WebhookEndpoint

AREA = catalog.PARAMETERS
RECENT = 50


@requires(AREA, catalog.READ)
def endpoint_list(request):
    """List the owner's endpoints with their state."""
    endpoints = WebhookEndpoint.objects.for_owner(request.user.owner)
    can_change = request.permissions.has(AREA, catalog.FULL)
    return render(
        request, "webhooks/endpoint_list.html", {"endpoints": endpoints, "can_change": can_change}
    )


@requires(AREA, catalog.FULL)
def endpoint_create(request):
    """Register an endpoint; its signing secret is shown once."""
    form = EndpointForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            endpoint, secret = services.create_endpoint(
                actor=request.user,
                reason=data["reason"],
                name=data["name"],
                url=data["url"],
                event_types=data["event_types"],
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            response = render(
                request,
                "webhooks/endpoint_created.html",
                {"endpoint": endpoint, "secret": secret},
                status=201,
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "webhooks/endpoint_form.html",
        {"form": form, "title": "New webhook endpoint"},
        status=400 if form.is_bound else 200,
    )


@requires(AREA, catalog.READ)
def endpoint_detail(request, pk: int):
    """An endpoint and its recent deliveries (state, answer, time)."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    deliveries = endpoint.deliveries.select_related("message").order_by("-created_at", "-id")
    return render(
        request,
        "webhooks/endpoint_detail.html",
        {
            "endpoint": endpoint,
            "deliveries": deliveries[:RECENT],
            "can_change": request.permissions.has(AREA, catalog.FULL),
        },
    )


@requires(AREA, catalog.FULL)
def endpoint_edit(request, pk: int):
    """Change the name, URL, event types or state of an endpoint."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    initial = {f: getattr(endpoint, f) for f in services.FIELDS}
    form = EndpointForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_endpoint(endpoint, actor=request.user, **form.cleaned_data)
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Webhook endpoint {endpoint.name} saved.")
            return redirect("webhooks:endpoint_detail", pk=endpoint.pk)
    return render(
        request,
        "webhooks/endpoint_form.html",
        {"form": form, "title": f"Edit {endpoint.name}", "endpoint": endpoint},
        status=400 if form.is_bound else 200,
    )


@requires(AREA, catalog.FULL)
def endpoint_delete(request, pk: int):
    """Confirm, then remove an endpoint and its deliveries."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    form = RemoveEndpointForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.delete_endpoint(
                endpoint, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, f"Webhook endpoint {endpoint.name} removed.")
            return redirect("webhooks:endpoint_list")
    return render(
        request,
        "components/confirm.html",
        {
            "title": "Remove webhook endpoint",
            "question": f"Remove the webhook endpoint {endpoint.name} ({endpoint.url})?",
            "consequences": [
                "Nothing more is sent to it, including deliveries still being retried.",
                "Its delivery history is removed with it.",
            ],
            "form": form,
            "confirm_label": "Remove endpoint",
            "cancel_url": reverse("webhooks:endpoint_detail", args=[endpoint.pk]),
        },
        status=400 if form.is_bound else 200,
    )


@requires(AREA, catalog.FULL)
@require_POST
def endpoint_test(request, pk: int):
    """Queue a `webhook.test` event to this endpoint."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    events.send_test_event(endpoint, actor=request.user)
    messages.success(request, "Test event queued: its delivery appears below within seconds.")
    return redirect("webhooks:endpoint_detail", pk=endpoint.pk)


@requires(AREA, catalog.FULL)
@require_POST
def delivery_resend(request, pk: int, delivery_pk: int):
    """Send a delivered or failed message again (same id and body, so receivers deduplicate)."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    found = endpoint.deliveries.select_related("message", "endpoint").filter(pk=delivery_pk).first()
    if found is None:
        raise Http404("Not found.")
    events.send_again(found)
    messages.success(request, f"Message {found.message.msg_id} queued again.")
    return redirect("webhooks:endpoint_detail", pk=endpoint.pk)


@requires(AREA, catalog.FULL)
def endpoint_rotate(request, pk: int):
    """Rotate the endpoint's signing secret with an overlap; show the new secret once."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    form = RotateSecretForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            endpoint, secret = services.rotate_secret(
                endpoint,
                actor=request.user,
                reason=form.cleaned_data["reason"],
                overlap_hours=form.cleaned_data["overlap_hours"],
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            response = render(
                request,
                "webhooks/endpoint_created.html",
                {"endpoint": endpoint, "secret": secret, "rotated": True},
            )
            response["Cache-Control"] = "no-store"
            return response
    return render(
        request,
        "webhooks/endpoint_rotate.html",
        {"form": form, "endpoint": endpoint},
        status=400 if form.is_bound else 200,
    )


@requires(AREA, catalog.FULL)
def endpoint_finish_rotation(request, pk: int):
    """Confirm with a reason, then stop signing with the previous secret."""
    endpoint = get_owned_or_404(request.user, WebhookEndpoint.objects.all(), pk)
    if not endpoint.rotating():
        messages.info(request, "No rotation is running: only the current secret signs.")
        return redirect("webhooks:endpoint_detail", pk=endpoint.pk)
    form = FinishRotationForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            services.finish_rotation(
                endpoint, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(request, "Rotation finished: only the new secret signs now.")
            return redirect("webhooks:endpoint_detail", pk=endpoint.pk)
    until = endpoint.previous_secret_until
    return render(
        request,
        "components/confirm.html",
        {
            "title": "Finish the secret rotation",
            "question": f"Stop signing the deliveries to {endpoint.name} with the previous secret?",
            "consequences": [
                f"Otherwise it signs too until {until:%-d %b %Y %H:%M} UTC.",
                "A receiver still checking with the previous secret refuses every delivery "
                "from the next one on.",
            ],
            "confirm_label": "Finish rotation",
            "cancel_url": reverse("webhooks:endpoint_detail", args=[endpoint.pk]),
            "form": form,
        },
        status=400 if form.is_bound else 200,
    )
