"""Screens of the security app: policy, passwords, step-up, sessions, lockouts, restrictions."""

from __future__ import annotations

import datetime

from django.contrib import auth, messages
from django.contrib.auth import get_user_model, update_session_auth_hash
from django.core.exceptions import ValidationError
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.defaultfilters import pluralize
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from audit import geo
from audit.display import summarise_user_agent
from portal.access import requires, signed_in
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from portal.redirects import safe_next
from portal.stepup import mark_proof, require_recent_proof
from roles import catalog, elevations
from roles.guards import EscalationRefused

from . import guidance, lockout, services, stepup
from .forms import (
    ChangePasswordForm,
    ElevationLimitForm,
    PasswordPolicyForm,
    ReasonForm,
    ReauthenticateForm,
    RequireTwoFactorConfirmForm,
    SignInRestrictionForm,
)
from .middleware import SIGNED_IN_AT
from .models import UserSession

# -- Password policy -----------------------------------------------------------------------------

POLICY_SECTIONS = (
    ("Passwords", ("min_length", "require_2fa")),
    (
        "Rules that current guidance advises against",
        (
            "require_upper",
            "require_lower",
            "require_digit",
            "require_symbol",
            "allowed_characters",
            "history_depth",
            "expiry_days",
        ),
    ),
    ("Lockout", ("lockout_threshold", "lockout_minutes")),
    ("Sessions and tokens", ("idle_timeout_minutes", "absolute_timeout_hours", "max_token_days")),
    (
        "Passkeys and sign-in alerts",
        ("allow_passwordless", "require_phishing_resistant", "notify_new_sign_in"),
    ),
)
COMPOSITION_FIELDS = ("require_upper", "require_lower", "require_digit", "require_symbol")


def _is_on(form, name: str) -> bool:
    value = form[name].value()
    if isinstance(value, bool):
        return value
    return value not in (None, "", "0", 0, "false", "False", "off")


def _policy_sections(form) -> list[dict]:
    sections = []
    for title, names in POLICY_SECTIONS:
        rows = []
        for name in names:
            note = None
            if name == "require_symbol":
                note = {
                    "text": guidance.COMPOSITION,
                    "fields": " ".join(COMPOSITION_FIELDS),
                    "on": any(_is_on(form, n) for n in COMPOSITION_FIELDS),
                }
            elif name in guidance.BY_FIELD and name not in COMPOSITION_FIELDS:
                note = {"text": guidance.BY_FIELD[name], "fields": name, "on": _is_on(form, name)}
            rows.append({"field": form[name], "note": note})
        sections.append({"title": title, "rows": rows})
    return sections


@requires(catalog.PARAMETERS, catalog.READ, write=catalog.FULL)
@never_cache
@require_http_methods(["GET", "POST"])
def policy_edit(request):
    """Show the owner's password policy and just-in-time limit; with full access, change either
    (after a recent proof). Each has its own form and Save button."""
    can_change = request.permissions.has(catalog.PARAMETERS, catalog.FULL)
    if can_change:
        refusal = require_recent_proof(request)
        if refusal is not None:
            return refusal
    owner = request.user.owner
    policy = services.policy_of(owner)
    was_required = policy.require_2fa  # the form writes its values onto `policy` when valid
    posted = request.POST.get("form", "policy") if request.method == "POST" else None
    form = PasswordPolicyForm(request.POST if posted == "policy" else None, instance=policy)
    elevation_form = ElevationLimitForm(
        request.POST if posted == "elevations" else None,
        initial={"max_elevation_hours": elevations.max_hours(owner)},
        prefix="jit",
    )
    if not can_change:
        for field in (*form.fields.values(), *elevation_form.fields.values()):
            field.disabled = True
    status = 200
    confirm_form, impact = None, None
    if posted == "policy":
        if form.is_valid() and form.cleaned_data["require_2fa"] and not was_required:
            # Turning the requirement on sends people to set-up: say who first, save on confirm.
            impact = services.enrolment_impact(owner, request.user)
            confirm_form = RequireTwoFactorConfirmForm(request.POST)
            if not confirm_form.was_shown():
                confirm_form = RequireTwoFactorConfirmForm()
        if form.is_valid() and (confirm_form is None or confirm_form.is_valid()):
            data = {name: form.cleaned_data[name] for name in services.POLICY_FIELDS}
            try:
                services.update_policy(
                    policy,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    data=data,
                    expected_row_version=form.cleaned_data["row_version"],
                )
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, "The password policy was saved.")
                return redirect("security:policy")
        if form.errors or (confirm_form is not None and confirm_form.errors):
            status = 400
    elif posted == "elevations":
        if elevation_form.is_valid():
            try:
                changed = elevations.set_max_hours(
                    owner,
                    elevation_form.cleaned_data["max_elevation_hours"],
                    actor=request.user,
                    reason=elevation_form.cleaned_data["reason"],
                )
            except ValidationError as exc:
                apply_service_errors(elevation_form, exc)
            else:
                if changed:
                    hours = changed["max_elevation_hours"][1]
                    messages.success(
                        request, f"Elevations now last at most {hours} hour{pluralize(hours)}."
                    )
                else:
                    messages.info(request, "The limit was already that; nothing changed.")
                return redirect(reverse("security:policy") + "#policy-elevations")
        status = 400
    elif posted is not None:
        status = 400
    return render(
        request,
        "security/policy.html",
        {
            "form": form,
            "elevation_form": elevation_form,
            "max_hours_ceiling": elevations.MAX_HOURS_CEILING,
            "policy": policy,
            "sections": _policy_sections(form),
            "can_change": can_change,
            "short_minimum_note": guidance.SHORT_MINIMUM if policy.min_length < 15 else "",
            "confirm_form": confirm_form,
            "impact": impact,
        },
        status=status,
    )


# -- Passwords and step-up -----------------------------------------------------------------------


@signed_in
@never_cache
@require_http_methods(["GET", "POST"])
def password_change(request):
    """Let a person with a local password choose a new one, re-entering the current one."""
    user = request.user
    forced = services.password_expired(user)
    if not user.has_usable_password() or user.is_sso_managed:
        return render(request, "security/password_change.html", {"form": None}, status=200)
    form = ChangePasswordForm(user, request.POST or None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                services.set_password(
                    user,
                    form.cleaned_data["new_password"],
                    actor=user,
                    via=services.PasswordVia.EXPIRY if forced else services.PasswordVia.SELF,
                )
            except ValidationError as exc:
                form.add_error("new_password", exc)
            else:
                update_session_auth_hash(request, user)
                mark_proof(request)
                messages.success(request, "Your password was changed.")
                return redirect(safe_next(request, "home"))
        elif "current_password" in form.errors and lockout.register_failure(
            request, user, "wrong_current_password"
        ):
            return _sign_out_locked(request)
        status = 400
    return render(
        request,
        "security/password_change.html",
        {"form": form, "forced": forced, "next": safe_next(request, "")},
        status=status,
    )


def _sign_out_locked(request):
    auth.logout(request)
    return redirect("accounts:sign_in")


@signed_in
@never_cache
@require_http_methods(["GET", "POST"])
def reauthenticate(request):
    """Ask for the password (and a code with 2FA) again, then return to the sensitive action."""
    user = request.user
    needs_code = stepup.second_factor_required(user)
    form = ReauthenticateForm(request.POST or None, needs_code=needs_code)
    status = 200
    if request.method == "POST":
        status = 400
        if form.is_valid():
            proof = stepup.prove_identity(
                request,
                user,
                password=form.cleaned_data["password"],
                code=form.cleaned_data.get("code") or "",
            )
            if proof.locked:
                return _sign_out_locked(request)
            if proof.accepted:
                return redirect(safe_next(request, "home"))
            if proof.throttled:
                form.add_error("code", "Too many wrong codes. Wait a moment and try again.")
            else:
                form.add_error(None, "That did not match. Try again.")
    return render(
        request,
        "security/reauthenticate.html",
        {"form": form, "next": safe_next(request, "")},
        status=status,
    )


@signed_in
@never_cache
@require_GET
def keep_alive(request):
    """Count as activity (the idle-timeout warning's "Stay signed in" button)."""
    return HttpResponse(status=204)


# -- Sessions ------------------------------------------------------------------------------------


ENDED_SHOWN_FOR = datetime.timedelta(days=1)


def _describe_sessions(sessions) -> list:
    """Attach what the sessions lists show: the browser as people say it, and the place."""
    for row in sessions:
        row.device = summarise_user_agent(row.user_agent) if row.user_agent else "Unknown browser"
        row.place = geo.locate(row.ip) if row.ip else ""
    return sessions


@signed_in
@never_cache
@require_http_methods(["GET", "POST"])
def my_sessions(request):
    """List the person's own sessions; sign out of one of them, or of every other one."""
    current = services.hash_session_key(request.session.session_key or "")
    if request.method == "POST":
        if request.POST.get("session"):
            row = get_object_or_404(
                UserSession, pk=_int(request.POST["session"]), user=request.user
            )
            if row.key_hash == current:
                messages.error(request, "That is the session you are using: sign out instead.")
            elif services.end_session(
                row, actor=request.user, reason="Signed out from Your sessions"
            ):
                messages.success(request, f"Signed out of {_describe_sessions([row])[0].device}.")
            return redirect("security:my_sessions")
        count = services.end_other_sessions(
            request.user, current_key=request.session.session_key or "", actor=request.user
        )
        messages.success(
            request, f"Signed out of {count} other session{'s' if count != 1 else ''}."
        )
        return redirect("security:my_sessions")
    recently = timezone.now() - ENDED_SHOWN_FOR
    sessions = UserSession.objects.filter(user=request.user).filter(
        Q(ended_at__isnull=True) | Q(ended_at__gte=recently)
    )
    return render(
        request,
        "security/my_sessions.html",
        {
            "sessions": _describe_sessions(sorted(sessions, key=lambda s: s.ended_at is not None)),
            "current_hash": current,
            "signed_in_at": SIGNED_IN_AT,
        },
    )


@requires(catalog.USERS, catalog.FULL)
@never_cache
@require_http_methods(["GET", "POST"])
def user_sessions(request, pk: int):
    """List a user's sessions; end one of them, or all (an administrator's action)."""
    target = get_owned_or_404(request.user, get_user_model().objects.all(), pk)
    form = ReasonForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        reason = form.cleaned_data["reason"]
        if request.POST.get("session"):
            row = get_object_or_404(UserSession, pk=_int(request.POST["session"]), user=target)
            if services.end_session(
                row, actor=request.user, reason=reason or "Ended by an administrator"
            ):
                device = _describe_sessions([row])[0].device
                messages.success(request, f"Ended the session of {target} on {device}.")
            else:
                messages.info(request, "That session had already ended.")
        else:
            count = services.end_all_sessions(target, actor=request.user, reason=reason)
            messages.success(
                request, f"Ended {count} session{'s' if count != 1 else ''} of {target}."
            )
        return redirect(safe_next(request, reverse("security:user_sessions", args=[target.pk])))
    sessions = UserSession.objects.filter(user=target).order_by("ended_at", "-last_seen_at")[:50]
    return render(
        request,
        "security/user_sessions.html",
        {"target": target, "sessions": _describe_sessions(list(sessions)), "form": form},
        status=400 if form.errors else 200,
    )


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise Http404("No such session.") from exc


# -- Lockouts ------------------------------------------------------------------------------------


@requires(catalog.USERS, catalog.FULL)
@never_cache
@require_GET
def lockouts(request):
    """List the owner's locked-out users, each with an unlock button."""
    owner = request.user.owner
    users = list(
        get_user_model()
        .objects.filter(owner=owner, pk__in=lockout.locked_user_ids(owner))
        .select_related("lockout_state", "owner", "owner__password_policy")
    )
    rows = [{"user": u, "until": lockout.locked_until(u)} for u in users]
    return render(
        request,
        "security/lockouts.html",
        {"rows": rows, "policy": services.policy_of(owner), "form": ReasonForm()},
    )


@requires(catalog.USERS, catalog.FULL)
@require_POST
def lockout_clear(request, pk: int):
    """Unlock one user's account."""
    target = get_owned_or_404(request.user, get_user_model().objects.all(), pk)
    form = ReasonForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    services.clear_lockout(target, actor=request.user, reason=reason)
    messages.success(request, f"{target} can sign in again.")
    return redirect(safe_next(request, reverse("security:lockouts")))


# -- Sign-in restrictions ------------------------------------------------------------------------


@requires(catalog.USERS, catalog.FULL)
@never_cache
@require_http_methods(["GET", "POST"])
def user_restriction(request, pk: int):
    """Set the networks and hours from which one user may sign in."""
    target = get_owned_or_404(request.user, get_user_model().objects.all(), pk)
    restriction = services.restriction_of(target)
    form = SignInRestrictionForm(request.POST or None, instance=restriction)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            data = {name: form.cleaned_data[name] for name in services.RESTRICTION_FIELDS}
            try:
                services.set_sign_in_restriction(
                    target,
                    actor=request.user,
                    reason=form.cleaned_data["reason"],
                    data=data,
                    expected_row_version=form.cleaned_data["row_version"],
                )
            except (EscalationRefused, ValidationError) as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, f"Sign-in restrictions of {target} saved.")
                return redirect("security:user_restriction", pk=target.pk)
        status = 400
    return render(
        request,
        "security/restriction.html",
        {"target": target, "form": form},
        status=status,
    )
