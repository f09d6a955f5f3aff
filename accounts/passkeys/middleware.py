"""Send a privileged person whom the owner requires to sign in with a passkey to add one first."""

from __future__ import annotations

from django.shortcuts import redirect

from portal.access import requirement_of

from . import policy

# Pages such a person may still open before adding a passkey (public pages are always open).
ALLOWED_VIEWS = {
    "passkeys:add",
    "passkeys:register_begin",
    "passkeys:register_complete",
    "passkeys:step_up_begin",
    "passkeys:step_up_complete",
    "twofactor:manage",
    "accounts:sign_out",
    "security:password_change",
    "security:keep_alive",
    "security:reauthenticate",
}


class PasskeyEnrolmentMiddleware:
    """With the owner's phishing-resistant rule, a privileged user without a passkey reaches
    only the pages that add one (after the permission middleware, whose levels it reads).

    Users signed in through the identity provider are left to the provider's rules.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated or user.is_sso_managed:
            return None
        requirement = requirement_of(view_func)
        if requirement is not None and requirement.public:
            return None
        match = request.resolver_match
        if match is not None and match.view_name in ALLOWED_VIEWS:
            return None
        perms = getattr(request, "permissions", None)
        if not policy.phishing_resistant_required(user, perms):  # policy came with the user
            return None
        if policy.has_passkey(user):
            return None
        return redirect("passkeys:add")
