"""The security panel of a user record: lockout, sessions and sign-in restrictions."""

from django import template
from django.utils import timezone

from audit.display import summarise_user_agent
from security import lockout
from security.models import SignInRestriction, UserSession

register = template.Library()

SESSIONS_SHOWN = 10


@register.inclusion_tag("security/_user_security.html", takes_context=True)
def user_security_status(context, subject):
    """Render the lockout state (with unlock), live sessions and restrictions of `subject`."""
    request = context["request"]
    now = timezone.now()
    can_change = request.permissions.has("users", "full")
    restriction = SignInRestriction.objects.filter(user=subject).first()
    live = list(UserSession.objects.filter(user=subject, ended_at__isnull=True))
    return {
        "request": request,
        "subject": subject,
        "can_change": can_change,
        "locked": lockout.is_locked(subject, now=now),
        "locked_until": lockout.locked_until(subject, now=now),
        "live_sessions": live,
        "sessions": [
            (row, summarise_user_agent(row.user_agent) if row.user_agent else "Unknown browser")
            for row in live[:SESSIONS_SHOWN]
        ],
        "restriction": restriction,
        "csrf_token": context.get("csrf_token"),
    }
