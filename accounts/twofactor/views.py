"""Screens of two-factor sign-in, the person's own device, recovery and the recovery console."""

from __future__ import annotations

import segno
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import mark_safe
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

from audit import context as audit_context
from portal.access import public, requires, signed_in
from portal.forms import apply_service_errors
from portal.owned import get_owned_or_404
from portal.stepup import recent_proof_required
from roles import catalog
from roles.guards import EscalationRefused, check_can_manage_user

from .. import recovery
from . import services as twofactor
from .forms import (
    ConsoleForm,
    EnrolForm,
    NewPasswordForm,
    ReasonForm,
    RecoverForm,
    RemoveDeviceForm,
    VerifyForm,
)

RECOVERY_SESSION_KEY = "recovery_checked"
RECOVERY_SESSION_SECONDS = 10 * 60


def _posted(request):
    """Return the submitted data on POST (even when empty), else None (an unbound form)."""
    return request.POST if request.method == "POST" else None


# Sign-in, second step ----------------------------------------------------------------------


@public
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def verify(request):
    """Ask for the TOTP or backup code of the person whose password was just accepted."""
    user = twofactor.pending_user(request)
    if user is None:
        messages.warning(request, "Your sign-in was not finished in time. Sign in again.")
        return redirect("accounts:sign_in")
    form = VerifyForm(_posted(request))
    error = ""
    if request.method == "POST" and form.is_valid():
        result = twofactor.verify_second_factor(user, form.cleaned_data["code"])
        if result.accepted:
            target = twofactor.complete_sign_in(request, user, result)
            remaining = result.backup_codes_remaining
            if remaining is not None and remaining <= twofactor.BACKUP_CODES_LOW:
                messages.warning(
                    request,
                    f"You have {remaining} backup code{'s' if remaining != 1 else ''} left. "
                    "Make new ones on your two-factor page.",
                )
            return redirect(target)
        if result.locked:
            error = "Too many failed attempts: sign-in is paused for this account. Try again later."
        elif result.passkey_required:
            error = "Your organisation requires a passkey for your account. Use your passkey."
        elif result.throttled:
            error = result.wait
        else:
            error = "That code did not work. Check it and try again."
    elif request.method == "POST":
        error = "Type the code from your app or a backup code."
    return render(
        request,
        "twofactor/verify.html",
        {"form": form, "error": error, "pending": user},
        status=400 if error else 200,
    )


# The person's own device -------------------------------------------------------------------


@signed_in
@never_cache
def manage(request):
    """Show the person's two-factor state and what they can do about it."""
    return render(
        request, "twofactor/manage.html", {"status": twofactor.status(request.user), "own": True}
    )


def _qr_svg(device) -> str:
    qr = segno.make(device.config_url(), error="m")
    svg = qr.svg_inline(
        scale=5,
        border=2,
        omitsize=True,
        dark="#101828",
        light="#ffffff",
        title="QR code",
        svgclass="qr",
    )
    return mark_safe(svg.replace("<svg ", '<svg role="img" ', 1))  # noqa: S308 - segno's markup


@signed_in
@never_cache
@require_http_methods(["GET", "POST"])
def enrol(request):
    """Set up an authenticator app: QR code and secret, confirmed by a first code."""
    try:
        device = twofactor.start_enrolment(request.user)
    except ValidationError as exc:
        messages.info(request, " ".join(exc.messages))
        return redirect("twofactor:manage")
    form = EnrolForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            codes = twofactor.confirm_enrolment(request.user, form.cleaned_data["code"])
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            request.session[twofactor.VERIFIED_SESSION_KEY] = True
            return render(
                request,
                "twofactor/backup_codes.html",
                {"codes": codes, "first_time": True},
            )
    context = {
        "form": form,
        "qr_svg": _qr_svg(device),
        "config_url": device.config_url(),
        "secret": device.base32_secret,
        "secret_groups": [device.base32_secret[i : i + 4] for i in range(0, 32, 4)],
        "required": twofactor.is_required(request.user),
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "twofactor/enrol.html", context, status=status)


@signed_in
@never_cache
@require_POST
@recent_proof_required()
def regenerate_codes(request):
    """Replace the person's backup codes and show the new ones once."""
    try:
        codes = twofactor.regenerate_backup_codes(request.user, actor=request.user)
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
        return redirect("twofactor:manage")
    return render(request, "twofactor/backup_codes.html", {"codes": codes, "first_time": False})


@signed_in
@never_cache
@require_http_methods(["GET", "POST"])
def remove(request):
    """Remove the person's own device after their password or a current code."""
    form = RemoveDeviceForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            twofactor.remove_own_device(
                request.user,
                password=form.cleaned_data["password"],
                token=form.cleaned_data["code"],
            )
        except ValidationError as exc:
            apply_service_errors(form, exc)
        else:
            request.session.pop(twofactor.VERIFIED_SESSION_KEY, None)
            messages.success(request, "Your authenticator app and backup codes were removed.")
            return redirect("twofactor:manage")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "twofactor/remove.html", {"form": form}, status=status)


# Support staff -----------------------------------------------------------------------------


def _target_user(request, pk):
    User = get_user_model()
    return get_owned_or_404(request.user, User.objects.select_related("owner"), pk)


@requires(catalog.DP_ACCESS, catalog.FULL)
@never_cache
@require_http_methods(["GET", "POST"])
@recent_proof_required()
def reset(request, pk):
    """Reset another person's two-factor device (with a reason); their sessions end."""
    target = _target_user(request, pk)
    form = ReasonForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            ended = twofactor.reset_device(
                target, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except (EscalationRefused, ValidationError) as exc:
            apply_service_errors(form, exc)
        else:
            messages.success(
                request,
                f"Two-factor authentication of {target.label} was reset; "
                f"{ended} session{'s' if ended != 1 else ''} ended.",
            )
            return redirect("twofactor:recovery_console", pk=target.pk)
    context = {
        "title": f"Reset two-factor authentication of {target.label}",
        "question": (
            f"Remove the authenticator app, backup codes and passkeys of {target.label} "
            f"({target.username})?"
        ),
        "consequences": [
            "Every session of this user ends now.",
            "They sign in with their password only until they set up a new app; if your "
            "organisation requires two-factor sign-in, they are asked to set it up at once.",
            "The reset and your reason are kept in the audit log.",
        ],
        "confirm_label": "Reset two-factor authentication",
        "cancel_url": reverse("twofactor:recovery_console", kwargs={"pk": target.pk}),
        "form": form,
    }
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "components/confirm.html", context, status=status)


@requires(catalog.DP_ACCESS, catalog.FULL)
@never_cache
@require_http_methods(["GET", "POST"])
@recent_proof_required()
def recovery_console(request, pk):
    """One screen for support: the account's state, then identity checks, one reason and the
    chosen actions, confirmed on a second step and run together; the user is told by email."""
    target = _target_user(request, pk)
    refusal = ""
    try:
        check_can_manage_user(request.user, target)
    except EscalationRefused as exc:
        refusal = str(exc)
    actions = recovery.console_actions(target)
    form = ConsoleForm(
        _posted(request),
        actions=[(code, label) for code, label, why_not in actions if not why_not],
    )
    plan = []
    if request.method == "POST" and not refusal and form.is_valid():
        if "edit" in request.POST:
            pass  # back to the form, as filled in
        elif request.POST.get("confirmed"):
            try:
                done = recovery.run_console_actions(
                    target,
                    actor=request.user,
                    actions=form.cleaned_data["action"],
                    reason=form.cleaned_data["reason"],
                    identity_checks=form.identity_checks(),
                )
            except (EscalationRefused, PermissionDenied, ValidationError) as exc:
                apply_service_errors(form, exc)
            else:
                done = [done[0], *(step[0].lower() + step[1:] for step in done[1:])]
                messages.success(request, f"{'; '.join(done)}. {target.label} was told by email.")
                return redirect("twofactor:recovery_console", pk=target.pk)
        else:
            plan = [
                (recovery.CONSOLE_LABELS[code], recovery.CONSOLE_CONSEQUENCES[code])
                for code in recovery.console_plan(form.cleaned_data["action"])
            ]
    context = {
        "target": target,
        "form": form,
        "actions": actions,
        "plan": plan,
        "state": recovery.account_state(target),
        "refusal": refusal,
    }
    status = 403 if refusal and request.method == "POST" else 200
    if form.is_bound and form.errors:
        status = 400
    return render(request, "twofactor/recovery_console.html", context, status=status)


# Public recovery page ----------------------------------------------------------------------


def _client_ip(request) -> str:
    facts = getattr(request, "audit_facts", None) or audit_context.current()
    return facts.ip or request.META.get("REMOTE_ADDR", "") or "unknown"


@public
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def recover(request):
    """Take the email address and the emailed code; on a match, offer the recovery choices."""
    form = RecoverForm(_posted(request))
    if request.method == "POST" and form.is_valid():
        try:
            checked = recovery.check_recovery_code(
                form.cleaned_data["email"], form.cleaned_data["code"], ip=_client_ip(request)
            )
        except ValidationError as exc:
            form.add_error(None, exc.messages)
        else:
            request.session.cycle_key()
            request.session[RECOVERY_SESSION_KEY] = {
                "code_id": checked.code_id,
                "at": timezone.now().timestamp(),
            }
            return redirect("twofactor:recover_choose")
    status = 400 if form.is_bound and form.errors else 200
    return render(request, "twofactor/recover.html", {"form": form}, status=status)


def _checked_code(request):
    checked = request.session.get(RECOVERY_SESSION_KEY)
    if not isinstance(checked, dict):
        return None
    age = timezone.now().timestamp() - float(checked.get("at", 0))
    if not 0 <= age <= RECOVERY_SESSION_SECONDS:
        request.session.pop(RECOVERY_SESSION_KEY, None)
        return None
    row = recovery.live_code(checked.get("code_id"))
    if row is None:
        request.session.pop(RECOVERY_SESSION_KEY, None)
        return None
    return row


@public
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def recover_choose(request):
    """Let the person set a new password or remove their two-factor device, once."""
    row = _checked_code(request)
    if row is None:
        messages.warning(request, "Enter your email address and recovery code first.")
        return redirect("twofactor:recover")
    available = recovery.available_actions(row.user)
    action = request.POST.get("action", "")
    password_form = NewPasswordForm(request.POST if action == recovery.ACTION_PASSWORD else None)
    error = ""
    if request.method == "POST":
        valid = action == recovery.ACTION_REMOVE_2FA or (
            action == recovery.ACTION_PASSWORD and password_form.is_valid()
        )
        if valid:
            try:
                recovery.use_recovery_code(
                    row.pk,
                    action=action,
                    new_password=password_form.cleaned_data.get("new_password1", "")
                    if action == recovery.ACTION_PASSWORD
                    else "",
                )
            except recovery.RecoveryRefused as exc:
                request.session.pop(RECOVERY_SESSION_KEY, None)
                messages.error(request, " ".join(exc.messages))
                return redirect("twofactor:recover")
            except ValidationError as exc:
                password_form.add_error("new_password1", exc.messages)
            else:
                request.session.pop(RECOVERY_SESSION_KEY, None)
                messages.success(
                    request,
                    "Your new password is set. Sign in with it; you will still be asked for "
                    "your two-factor code."
                    if action == recovery.ACTION_PASSWORD
                    else "Your two-factor device was removed. Sign in with your password.",
                )
                return redirect("accounts:sign_in")
        elif action not in (recovery.ACTION_PASSWORD, recovery.ACTION_REMOVE_2FA):
            error = "Choose one of the options."
    context = {
        "password_form": password_form,
        "can_set_password": recovery.ACTION_PASSWORD in available,
        "can_remove_2fa": recovery.ACTION_REMOVE_2FA in available,
        "error": error,
    }
    status = 400 if request.method == "POST" else 200
    return render(request, "twofactor/recover_choose.html", context, status=status)
