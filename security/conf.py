"""Tunables of the security app, read from settings when used (never at import time).

SECURITY_STEP_UP_MINUTES      how recent a password proof must be for sensitive actions (5)
SECURITY_IDLE_WARNING_SECONDS how long before the idle timeout the browser warns (120)
SECURITY_SESSION_TOUCH_SECONDS how often a session's "last seen" is written (60)
SECURITY_PERMANENT_LOCKOUT_WINDOW_HOURS  how long failures count when a policy locks until an
                                administrator clears it (24)
"""

from __future__ import annotations

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

DEFAULTS = {
    "SECURITY_STEP_UP_MINUTES": 5,
    "SECURITY_IDLE_WARNING_SECONDS": 120,
    "SECURITY_SESSION_TOUCH_SECONDS": 60,
    "SECURITY_PERMANENT_LOCKOUT_WINDOW_HOURS": 24,
}


# Values read so far. The session middleware reads two of them on every request, and a name the
# settings leave out makes Django's settings object raise (and catch) AttributeError each time.
_values: dict[str, int] = {}


def get(name: str) -> int:
    """Return the setting `name`, or its default."""
    try:
        return _values[name]
    except KeyError:
        value = _values[name] = getattr(settings, name, DEFAULTS[name])
        return value


@receiver(setting_changed)
def _forget(*, setting, **kwargs):
    _values.pop(setting, None)
