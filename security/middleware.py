"""Session rules of the owner's policy, applied on every request of a signed-in person.

`SessionSecurityMiddleware` (after AuthenticationMiddleware) ends a session that was idle too long,
outlived its absolute lifetime or was ended from the sessions screens; rotates the session key
when the person's own permissions change; and keeps `UserSession` (last seen, address) up to date.
`PasswordChangeRequiredMiddleware` (after the permission middleware) confines a person whose
password expired, or must be changed, to the change-password page.
"""

from __future__ import annotations

import datetime

from django.contrib import auth
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.http import urlencode

import audit
from audit.choices import AuditAction

from . import conf
from .models import UserSession
from .services import hash_session_key, password_expired
from .validators import policy_for

SIGNED_IN_AT = "signed_in_at"
LAST_SEEN = "last_seen_at"
PERMISSIONS_VERSION = "permissions_version"
TRACKED_SESSION = "tracked_session_id"
ENDED_NOTICE = "session_ended"

ENDED_MESSAGES = {
    "idle": "You were signed out after a period without activity. Sign in again to continue.",
    "absolute": "Your session reached its maximum length. Sign in again to continue.",
    "ended": "This session was ended. Sign in again to continue.",
}


def _timestamp(value) -> datetime.datetime | None:
    if isinstance(value, int | float):
        return datetime.datetime.fromtimestamp(value, tz=datetime.UTC)
    if isinstance(value, str):
        try:
            return datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


class SessionSecurityMiddleware:
    """End idle, overlong and revoked sessions; rotate the key when permissions change."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            ended = self.check(request, user, timezone.now())
            if ended is not None:
                return ended
        return self.get_response(request)

    def check(self, request, user, now):
        session = request.session
        policy = policy_for(user)
        signed_in_at = _timestamp(session.get(SIGNED_IN_AT))
        if signed_in_at is None:
            signed_in_at = now
            session[SIGNED_IN_AT] = now.isoformat()
        last_seen = _timestamp(session.get(LAST_SEEN)) or now
        idle = datetime.timedelta(minutes=policy.idle_timeout_minutes)
        lifetime = datetime.timedelta(hours=policy.absolute_timeout_hours)
        if now - last_seen >= idle:
            return self.end(request, user, "idle", f"idle for {policy.idle_timeout_minutes} min")
        if now - signed_in_at >= lifetime:
            return self.end(
                request, user, "absolute", f"older than {policy.absolute_timeout_hours} h"
            )

        version = session.get(PERMISSIONS_VERSION)
        if version != user.permissions_version:
            if version is not None:
                session.cycle_key()  # a privilege change: the old key no longer works
            session[PERMISSIONS_VERSION] = user.permissions_version

        touch = datetime.timedelta(seconds=conf.get("SECURITY_SESSION_TOUCH_SECONDS"))
        tracked = self.track(request, user, now, touch)
        if tracked is not None and tracked.ended_at is not None:
            return self.end(request, user, "ended", tracked.end_reason or "ended", record=False)
        if LAST_SEEN not in session or now - last_seen >= touch:
            session[LAST_SEEN] = now.isoformat()
            last_seen = now
        request.session_timeouts = {
            "idle_remaining": int((last_seen + idle - now).total_seconds()),
            "idle_timeout": int(idle.total_seconds()),
            "warning": conf.get("SECURITY_IDLE_WARNING_SECONDS"),
        }
        return None

    def track(self, request, user, now, touch) -> UserSession | None:
        """Find or create this session's UserSession row; refresh its last-seen time."""
        session = request.session
        if session.session_key is None:
            session.save()
        key_hash = hash_session_key(session.session_key)
        row = None
        row_id = session.get(TRACKED_SESSION)
        if row_id is not None:
            row = UserSession.objects.filter(pk=row_id, user_id=user.pk).first()
        if row is None:
            facts = getattr(request, "audit_facts", None)
            row, _ = UserSession.objects.get_or_create(
                key_hash=key_hash,
                defaults={
                    "user_id": user.pk,
                    "created_at": now,
                    "last_seen_at": now,
                    "ip": getattr(facts, "ip", None),
                    "user_agent": getattr(facts, "user_agent", "")[:400],
                },
            )
            session[TRACKED_SESSION] = row.pk
            return row
        if row.ended_at is not None:
            return row
        updates = {}
        if row.key_hash != key_hash:
            updates["key_hash"] = key_hash
        if now - row.last_seen_at >= touch:
            facts = getattr(request, "audit_facts", None)
            updates.update(last_seen_at=now, ip=getattr(facts, "ip", None) or row.ip)
        if updates:
            UserSession.objects.filter(pk=row.pk).update(**updates)
        return row

    def end(self, request, user, kind: str, reason: str, *, record: bool = True):
        """Sign the person out, record why, and send them to the sign-in page."""
        row_id = request.session.get(TRACKED_SESSION)
        if record:
            audit.record(
                AuditAction.SESSION_EXPIRED,
                actor=user,
                target=user,
                reason=reason,
                context={"kind": kind},
            )
            if row_id is not None:
                UserSession.objects.filter(pk=row_id, ended_at__isnull=True).update(
                    ended_at=timezone.now(), end_reason=reason[:100]
                )
        auth.logout(request)
        request.session[ENDED_NOTICE] = kind
        target = reverse("accounts:sign_in")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)


# Views a person who must change the password may still open.
PASSWORD_CHANGE_OPEN_VIEWS = frozenset(
    {"security:password_change", "accounts:sign_out", "security:keep_alive"}
)


class PasswordChangeRequiredMiddleware:
    """Send a person whose password expired (or must change) to the change-password page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        user = getattr(request, "user", None)
        if user is None or not user.is_authenticated:
            return None
        match = getattr(request, "resolver_match", None)
        if match is None or match.view_name in PASSWORD_CHANGE_OPEN_VIEWS:
            return None
        if not password_expired(user):
            return None
        target = reverse("security:password_change")
        if request.method == "GET":
            target += "?" + urlencode({"next": request.get_full_path()})
        return redirect(target)
