"""Send a signed-in person whose owner requires two-factor sign-in to enrolment first."""

from __future__ import annotations

from django.shortcuts import redirect

from portal.access import requirement_of

from . import services as twofactor

# Pages a person without a device may still open (public pages are always open).
ALLOWED_VIEWS = {
    "twofactor:enrol",
    "twofactor:manage",
    "passkeys:add",  # a passkey satisfies the rule as well as an app
    "passkeys:register_begin",
    "passkeys:register_complete",
    "accounts:sign_out",
    "security:password_change",  # an expired password is changed first (middleware before)
    "security:keep_alive",
    "security:reauthenticate",
}


class TwoFactorEnrolmentMiddleware:
    """With the owner's `require_2fa`, a user without an app or a passkey reaches only enrolment.

    Users signed in through the identity provider (SAML) are left to the provider's own second
    factor. Once a session is known to belong to a user with a device it is not checked again.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        if request.session.get(twofactor.VERIFIED_SESSION_KEY) or user.is_sso_managed:
            return None
        requirement = requirement_of(view_func)
        if requirement is not None and requirement.public:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in ALLOWED_VIEWS:
            return None
        if not twofactor.is_required(user):  # the policy came with the user: no query
            return None
        if twofactor.has_second_factor(user):
            request.session[twofactor.VERIFIED_SESSION_KEY] = True
            return None
        return redirect("twofactor:enrol")
