"""Session rules of the owner's policy, applied on every request of a signed-in person.

`SessionSecurityMiddleware` (after AuthenticationMiddleware) ends a session that was idle too long,
outlived its absolute lifetime or was ended from the sessions screens; rotates the session key
when the person's own permissions change; and keeps `UserSession` (last seen, address) up to date.
Every response of a signed-in person carries the moment of that request in a signed cookie bound
to the session key, so the idle timeout counts from the last request exactly, without writing the
session on every request (the session's own "last seen" is written once a minute).
`PasswordChangeRequiredMiddleware` (after the permission middleware) confines a person whose
password expired, or must be changed, to the change-password page.
"""

from __future__ import annotations

import datetime

from django.conf import settings
from django.contrib import auth
from django.core import signing
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
TRACKED_KEY = "tracked_key_hash"
SESSION_EPOCH = "session_epoch"
ENDED_NOTICE = "session_ended"
ACTIVITY_COOKIE = "last_active"
ACTIVITY_SALT = "security.middleware.activity"

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


def stamp_session_epoch(sender, request, user, **kwargs):
    """On sign-in, note the user's session epoch in the new session (`user_logged_in`).

    Ending a user's sessions bumps the epoch; a session signed in before that and not seen
    since has no tracking row to mark, and is refused at its first request by this stamp. The
    epoch is read from the database: the instance signed in may have been loaded earlier.
    """
    if request is not None and hasattr(request, "session"):
        user.refresh_from_db(fields=["session_epoch"])
        request.session[SESSION_EPOCH] = user.session_epoch


def _key_tag(session_key: str) -> str:
    return hash_session_key(session_key)[:16]


def set_activity(response, session_key: str, now: datetime.datetime) -> None:
    """Stamp the response with the moment of this request, signed and bound to the session."""
    value = signing.dumps({"k": _key_tag(session_key), "t": now.timestamp()}, salt=ACTIVITY_SALT)
    response.set_cookie(
        ACTIVITY_COOKIE,
        value,
        secure=settings.SESSION_COOKIE_SECURE,
        httponly=True,
        samesite="Lax",
    )


def last_activity(request) -> datetime.datetime | None:
    """Return the moment of the session's last request from its activity cookie, if genuine.

    A cookie of another session, or one not signed by this portal, counts for nothing; an older
    genuine one only makes the session look idle sooner.
    """
    raw = request.COOKIES.get(ACTIVITY_COOKIE)
    key = request.session.session_key
    if not raw or not key:
        return None
    try:
        value = signing.loads(raw, salt=ACTIVITY_SALT)
        if value.get("k") != _key_tag(key):
            return None
        return datetime.datetime.fromtimestamp(float(value["t"]), tz=datetime.UTC)
    except (signing.BadSignature, KeyError, TypeError, ValueError, AttributeError, OverflowError):
        return None


class SessionSecurityMiddleware:
    """End idle, overlong and revoked sessions; rotate the key when permissions change."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        user = getattr(request, "user", None)
        now = timezone.now()
        if user is not None and user.is_authenticated:
            ended = self.check(request, user, now)
            if ended is not None:
                ended.delete_cookie(ACTIVITY_COOKIE, samesite="Lax")
                return ended
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and request.session.session_key:
            set_activity(response, request.session.session_key, now)
        elif ACTIVITY_COOKIE in request.COOKIES:
            response.delete_cookie(ACTIVITY_COOKIE, samesite="Lax")
        return response

    def check(self, request, user, now):
        session = request.session
        policy = policy_for(user)
        signed_in_at = _timestamp(session.get(SIGNED_IN_AT))
        if signed_in_at is None:
            signed_in_at = now
            session[SIGNED_IN_AT] = now.isoformat()
        last_seen = _timestamp(session.get(LAST_SEEN)) or now
        active = last_activity(request)
        if active is not None and active > last_seen:
            last_seen = min(active, now)
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
        touching = LAST_SEEN not in session or now - last_seen >= touch
        ended = self.track(request, user, now, touching)
        if ended is not None:
            return self.end(request, user, "ended", ended, record=False)
        if touching:
            session[LAST_SEEN] = now.isoformat()
        last_seen = now  # this request is activity: the idle time starts again from it
        request.session_timeouts = {
            "idle_remaining": int((last_seen + idle - now).total_seconds()),
            "idle_timeout": int(idle.total_seconds()),
            "warning": conf.get("SECURITY_IDLE_WARNING_SECONDS"),
        }
        return None

    def track(self, request, user, now, touching: bool) -> str | None:
        """Keep this session's UserSession row current; return why it was ended, or None.

        The row is read only when the user's `session_epoch` moved since this session last
        looked, that is when some of the user's sessions were ended: an ended session is refused
        at its next request, and an ordinary request costs no query. The row's last-seen time
        is written every SECURITY_SESSION_TOUCH_SECONDS, its key hash when the key rotated.
        """
        session = request.session
        if session.session_key is None:
            session.save()
        key_hash = hash_session_key(session.session_key)
        epoch = user.session_epoch
        facts = getattr(request, "audit_facts", None)
        ip = getattr(facts, "ip", None)
        row_id = session.get(TRACKED_SESSION)
        if row_id is not None and session.get(SESSION_EPOCH) != epoch:
            state = (
                UserSession.objects.filter(pk=row_id, user_id=user.pk)
                .values_list("ended_at", "end_reason")
                .first()
            )
            if state is None:
                row_id = None  # the row is gone: track the session afresh
            elif state[0] is not None:
                return state[1] or "ended"
            else:
                session[SESSION_EPOCH] = epoch
        if row_id is None:
            if session.get(SESSION_EPOCH, epoch) != epoch:
                # Signed in before the user's sessions were ended, and not seen since.
                return "ended"
            row, _ = UserSession.objects.get_or_create(
                key_hash=key_hash,
                defaults={
                    "user_id": user.pk,
                    "created_at": now,
                    "last_seen_at": now,
                    "ip": ip,
                    "user_agent": getattr(facts, "user_agent", "")[:400],
                },
            )
            if row.ended_at is not None:
                return row.end_reason or "ended"
            session[TRACKED_SESSION] = row.pk
            session[TRACKED_KEY] = key_hash
            session[SESSION_EPOCH] = epoch
            return None
        updates: dict = {}
        if session.get(TRACKED_KEY) != key_hash:
            updates["key_hash"] = session[TRACKED_KEY] = key_hash
        if touching:
            updates["last_seen_at"] = now
            if ip:
                updates["ip"] = ip
        if updates:
            UserSession.objects.filter(pk=row_id).update(**updates)
        return None

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
        if request.method == "GET" and request.path != target:
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
