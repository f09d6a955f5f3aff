"""Authenticate with a login (username or email) and a local password."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.utils import timezone

from portal.requests import client_ip
from security import lockout
from security.choices import SignInFailure
from security.models import SignInRestriction

from .choices import AuthSource, UserKind


class PortalBackend(ModelBackend):
    """Check a login and password; leave the exact failure reason on the request for the audit."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        User = get_user_model()
        if not username or not password:
            _fail(request, SignInFailure.MISSING_FIELDS, None)
            return None
        user = User.objects.find_by_login(username)
        if user is None:
            User().set_password(password)  # spend the hashing time an existing user would cost
            _fail(request, SignInFailure.UNKNOWN_USER, None)
            return None
        if not user.has_usable_password():
            User().set_password(password)
            reason = (
                SignInFailure.SSO_MANAGED
                if user.auth_source == AuthSource.SAML
                else SignInFailure.NO_PASSWORD
            )
            _fail(request, reason, user)
            return None
        if not user.check_password(password):
            _fail(request, SignInFailure.WRONG_PASSWORD, user)
            return None
        if user.auth_source == AuthSource.SAML:
            _fail(request, SignInFailure.SSO_MANAGED, user)
            return None
        if user.kind == UserKind.API:
            _fail(request, SignInFailure.API_USER, user)
            return None
        if not user.allow_login:
            _fail(request, SignInFailure.LOGIN_DISABLED, user)
            return None
        refusal = restriction_refusal(request, user)
        if refusal:
            _fail(request, refusal, user)
            return None
        lockout.release_attempt(request, user)
        return user

    def get_user(self, user_id):
        User = get_user_model()
        try:
            user = User.objects.select_related("owner", "owner__password_policy", "role").get(
                pk=user_id
            )
        except User.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    def get_all_permissions(self, user_obj, obj=None):
        return set()  # portal permissions come from roles.permissions, not Django's tables


def restriction_refusal(request, user, *, now=None) -> str | None:
    """Return why the user's sign-in restriction refuses this request, or None."""
    restriction = SignInRestriction.objects.filter(user_id=user.pk).first()
    if restriction is None:
        return None
    restriction.user = user
    if request is not None and not restriction.allows_address(client_ip(request)):
        return SignInFailure.ADDRESS_NOT_ALLOWED
    if not restriction.allows_time(now or timezone.now()):
        return SignInFailure.OUTSIDE_ALLOWED_HOURS
    return None


def _fail(request, reason: str, user) -> None:
    if request is not None:
        request.sign_in_failure = (reason, user)
