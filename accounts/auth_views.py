"""Sign-in and sign-out, and the sign-in page shown to a locked-out account."""

from __future__ import annotations

from django.conf import settings
from django.contrib import auth
from django.shortcuts import redirect, render, resolve_url
from django.urls import reverse
from django.utils.http import urlencode
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods, require_POST

import audit
from audit.choices import AuditAction
from portal import stepup
from portal.access import public, signed_in
from portal.redirects import safe_next
from security.choices import SignInFailure
from security.middleware import ENDED_MESSAGES, ENDED_NOTICE
from security.services import password_expired

from . import services
from .forms import SignInForm
from .twofactor import services as twofactor

GENERIC_FAILURE = "Those sign-in details did not work. Check them and try again."


@public
@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def sign_in(request):
    """Show the sign-in form; on success start a session, on failure say nothing specific."""
    if request.user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request))
    form = SignInForm(request.POST or None)
    error = ""
    notice = ENDED_MESSAGES.get(request.session.pop(ENDED_NOTICE, ""), "")
    if request.method == "POST":
        if form.is_valid():
            login = form.cleaned_data["login"]
            user = auth.authenticate(
                request, username=login, password=form.cleaned_data["password"]
            )
            if user is not None:
                if held := twofactor.start_second_step(
                    request, user, next_url=safe_next(request, "")
                ):
                    return held
                services.record_sign_in(request, user, method="password")
                stepup.mark_proof(request)
                if password_expired(user):
                    audit.record(AuditAction.PASSWORD_EXPIRED, actor=user, target=user)
                    return redirect(
                        reverse("security:password_change")
                        + "?"
                        + urlencode({"next": resolve_url(safe_next(request))})
                    )
                return redirect(safe_next(request))
            reason, known = getattr(
                request, "sign_in_failure", (SignInFailure.WRONG_PASSWORD, None)
            )
            services.record_sign_in_failure(login, reason, known)
        else:
            services.record_sign_in_failure(
                request.POST.get("login", ""), SignInFailure.MISSING_FIELDS
            )
        error = GENERIC_FAILURE
    status = 200 if not error else 400
    return render(
        request,
        "accounts/sign_in.html",
        {"form": form, "error": error, "notice": notice, "next": safe_next(request, "")},
        status=status,
    )


@signed_in
@require_POST
def sign_out(request):
    services.sign_out(request)
    return redirect(settings.LOGOUT_REDIRECT_URL)


def locked_out(request, original_response=None, credentials=None):
    """AXES_LOCKOUT_CALLABLE: the sign-in page with the same generic message as any failure."""
    if original_response is not None:
        return original_response
    return render(
        request,
        "accounts/sign_in.html",
        {"form": SignInForm(), "error": GENERIC_FAILURE, "next": ""},
        status=400,
    )
