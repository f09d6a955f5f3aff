"""System checks: the lockout and session machinery is wired the way security.lockout expects."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register

AXES_BACKEND = "axes.backends.AxesStandaloneBackend"
SESSION_MIDDLEWARE = "security.middleware.SessionSecurityMiddleware"
AUTH_MIDDLEWARE = "accounts.middleware.AuthenticationMiddleware"
PASSWORD_MIDDLEWARE = "security.middleware.PasswordChangeRequiredMiddleware"
PERMISSION_MIDDLEWARE = "roles.middleware.PermissionMiddleware"


@register(Tags.security)
def check_lockout_and_sessions(app_configs=None, **kwargs):
    errors = []
    backends = list(getattr(settings, "AUTHENTICATION_BACKENDS", []))
    if not backends or backends[0] != AXES_BACKEND:
        errors.append(
            Error(
                f"{AXES_BACKEND} must come first in AUTHENTICATION_BACKENDS.",
                hint="Otherwise a locked-out account's password is still checked.",
                id="billing_security.E001",
            )
        )
    if getattr(settings, "AXES_HANDLER", "") != "security.lockout.PolicyLockoutHandler":
        errors.append(
            Error(
                "AXES_HANDLER must be security.lockout.PolicyLockoutHandler.",
                hint="It applies each owner's lockout policy and counts attempts atomically.",
                id="billing_security.E002",
            )
        )
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    order = [AUTH_MIDDLEWARE, SESSION_MIDDLEWARE, PERMISSION_MIDDLEWARE, PASSWORD_MIDDLEWARE]
    positions = [middleware.index(m) if m in middleware else -1 for m in order]
    if -1 in positions or positions != sorted(positions):
        errors.append(
            Error(
                "MIDDLEWARE must hold, in this order: " + ", ".join(order) + ".",
                id="billing_security.E003",
            )
        )
    return errors
