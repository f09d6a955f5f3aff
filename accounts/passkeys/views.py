"""Screens and JSON endpoints of passkeys: static/js/passkeys.js runs each ceremony.

A ceremony is two POSTs of JSON: `…/begin/` answers the options for `navigator.credentials`,
`…/complete/` takes the browser's response and answers `{"redirect": url}` or, refused,
`{"error": plain message}` with 400 (413 for a body over the limit, 403 without a recent proof).
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.shortcuts import redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from portal.access import public, requires, signed_in
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from portal.redirects import safe_next
from portal.stepup import has_recent_proof, recent_proof_required
from roles import catalog
from roles.guards import EscalationRefused

from .. import services as account_services
from ..twofactor import services as twofactor
from ..twofactor.forms import ReasonForm
from . import ceremony, policy, services
from .ceremony import PasskeyRefused, Purpose
from .forms import PasskeyNameForm


def _refused(message: str, status: int = 400, **extra) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


def _needs_proof(request, page: str) -> JsonResponse:
    url = reverse("security:reauthenticate") + "?" + urlencode({"next": page})
    return _refused("Confirm it is you first, then add the passkey.", 403, redirect=url)


# The person's own passkeys -----------------------------------------------------------------


@signed_in
@never_cache
@require_http_methods(["GET"])
@recent_proof_required(methods={"GET"})
def add(request):
    """Offer to add a passkey or security key (the browser asks for it)."""
    user = request.user
    context = {
        "form": PasskeyNameForm(initial={"name": services.default_name()}),
        "passkey_required": policy.phishing_resistant_required(
            user, getattr(request, "permissions", None)
        )
        and not policy.has_passkey(user),
        "two_factor_required": twofactor.is_required(user)
        and not twofactor.has_second_factor(user),
        "passkeys": services.passkeys_of(user),
        "next": safe_next(request, ""),
    }
    return render(request, "passkeys/add.html", context)


@signed_in
@never_cache
@require_POST
def register_begin(request):
    """Answer the creation options of a new credential for the signed-in person."""
    if not has_recent_proof(request):
        return _needs_proof(request, reverse("passkeys:add"))
    return JsonResponse(services.begin_registration(request, request.user))


@signed_in
@never_cache
@require_POST
def register_complete(request):
    """Save the browser's new credential; answer where to go next."""
    if not has_recent_proof(request):
        return _needs_proof(request, reverse("passkeys:add"))
    try:
        data = ceremony.read_json(request)
    except PasskeyRefused as exc:
        services.record_refusal(exc, stage="registration", user=request.user)
        return _refused(exc.message, exc.status)
    try:
        credential = services.add_passkey(request, request.user, data)
    except PasskeyRefused as exc:  # recorded by the service
        return _refused(exc.message, exc.status)
    request.session[twofactor.VERIFIED_SESSION_KEY] = True
    messages.success(request, f'Your passkey "{credential.name}" was added.')
    return JsonResponse({"redirect": safe_next(request, reverse("twofactor:manage"))})


@signed_in
@never_cache
@require_http_methods(["GET", "POST"])
@recent_proof_required()
def remove(request, pk: int):
    """Remove one of the person's own passkeys, after a confirmation."""
    credential = services.passkeys_of(request.user).filter(pk=pk).first()
    if credential is None:
        return redirect("twofactor:manage")
    if request.method == "POST":
        name = services.remove_own_passkey(request.user, pk)
        messages.success(request, f'Your passkey "{name}" was removed.')
        return redirect("twofactor:manage")
    last = not twofactor.has_confirmed_device(request.user) and (
        services.passkeys_of(request.user).count() == 1
    )
    context = {
        "title": "Remove a passkey",
        "question": f'Remove the passkey "{credential.name}" from your account?',
        "consequences": [
            "It no longer signs you in or confirms it is you. The copy on your device stays "
            "until you delete it there.",
            *(
                [
                    "It is your last second factor: you sign in with your password only until "
                    "you add another."
                ]
                if last
                else []
            ),
        ],
        "confirm_label": "Remove passkey",
        "cancel_url": reverse("twofactor:manage"),
    }
    return render(request, "components/confirm.html", context)


# Support staff -----------------------------------------------------------------------------


@requires(catalog.DP_ACCESS, catalog.FULL)
@never_cache
@require_http_methods(["GET", "POST"])
@recent_proof_required()
def revoke(request, pk: int, kind: str, device: int):
    """Revoke one authenticator of another person, with a reason; their last ends sessions."""
    target = get_owned_or_404(request.user, get_user_model().objects.select_related("owner"), pk)
    found = next(
        (a for a in services.authenticators_of(target) if a.url_kind == kind and a.pk == device),
        None,
    )
    if found is None:
        return redirect("accounts:user_security", pk=target.pk)
    form = ReasonForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        try:
            revoked = services.revoke_authenticator(
                target,
                actor=request.user,
                kind=kind,
                pk=device,
                reason=form.cleaned_data["reason"],
            )
        except (EscalationRefused, ValidationError) as exc:
            apply_service_errors(form, exc)
        else:
            ended = (
                f"; it was their last, so {revoked.sessions_ended} "
                f"session{'s' if revoked.sessions_ended != 1 else ''} ended"
                if revoked.was_last
                else ""
            )
            messages.success(
                request, f'{revoked.kind_label} "{revoked.name}" of {target.label} revoked{ended}.'
            )
            return redirect("accounts:user_security", pk=target.pk)
    others = [a for a in services.authenticators_of(target) if a != found]
    context = {
        "title": f"Revoke an authenticator of {target.label}",
        "question": f'Revoke the {found.kind_label.lower()} "{found.name}" of {target.label} '
        f"({target.username})?",
        "consequences": [
            f"It no longer signs {target.label} in or confirms their identity.",
            "They are emailed that it was revoked, with a link to their sessions.",
            (
                "It is their last authenticator: every session of theirs ends now."
                if not others
                else f"They keep {len(others)} other authenticator{pluralize(len(others))}."
            ),
            "The revocation and your reason are kept in the audit log.",
        ],
        "confirm_label": "Revoke",
        "cancel_url": reverse("accounts:user_security", kwargs={"pk": target.pk}),
        "form": form,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "components/confirm.html", context, status=status)


# Sign-in: the second step and passwordless ---------------------------------------------------


def _purpose(data: dict) -> str:
    purpose = data.get("purpose")
    return purpose if purpose in (Purpose.SECOND_STEP, Purpose.PASSWORDLESS) else ""


@public
@never_cache
@csrf_protect
@require_POST
def sign_in_begin(request):
    """Answer the request options of a passwordless sign-in or of the second step."""
    try:
        data = ceremony.read_json(request)
        return JsonResponse(services.begin_sign_in(request, _purpose(data)))
    except PasskeyRefused as exc:
        return _refused(exc.message, exc.status)
    except services.SignInRefused as exc:
        return _refused(exc.message, exc.status, redirect=reverse("accounts:sign_in"))


@public
@never_cache
@csrf_protect
@require_POST
def sign_in_complete(request):
    """Check the passkey's response; sign the person in; answer where to go next."""
    try:
        data = ceremony.read_json(request)
    except PasskeyRefused as exc:
        services.record_refusal(exc, stage="sign_in", user=twofactor.pending_user(request))
        return _refused(exc.message, exc.status)
    try:
        purpose = _purpose(data)
        if purpose == Purpose.SECOND_STEP:
            target = services.complete_second_step(request, data)
        elif purpose == Purpose.PASSWORDLESS:
            target = services.complete_passwordless(request, data, next_url=safe_next(request, ""))
        else:
            refused = PasskeyRefused(ceremony.Reason.MALFORMED, detail="unknown purpose")
            services.record_refusal(refused, stage="sign_in")
            return _refused(refused.message, refused.status)
    except services.SignInRefused as exc:
        return _refused(exc.message, exc.status)
    return JsonResponse({"redirect": target})


# Step-up -----------------------------------------------------------------------------------


@signed_in
@never_cache
@require_POST
def step_up_begin(request):
    """Answer the request options of a step-up with one of the person's passkeys."""
    try:
        return JsonResponse(services.begin_step_up(request, request.user))
    except services.SignInRefused as exc:
        return _refused(exc.message, exc.status)


@signed_in
@never_cache
@require_POST
def step_up_complete(request):
    """Accept the passkey as a fresh proof of identity; answer where to go next."""
    try:
        data = ceremony.read_json(request)
    except PasskeyRefused as exc:
        services.record_refusal(exc, stage="step_up", user=request.user)
        return _refused(exc.message, exc.status)
    result = services.complete_step_up(request, request.user, data)
    if result.locked:
        account_services.sign_out(request)
        return _refused(services.LOCKED, 403, redirect=reverse("accounts:sign_in"))
    if not result.accepted:
        return _refused(result.message, result.status)
    return JsonResponse({"redirect": safe_next(request, reverse("home"))})
