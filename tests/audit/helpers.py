"""Write audit events as they would be written during a request (address, browser, request id)."""

import contextlib
import datetime
from unittest import mock

import audit
from audit.context import RequestFacts, reset, set_current

FIREFOX_WINDOWS = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0"
UK_ADDRESS = "81.2.69.142"


@contextlib.contextmanager
def request_facts(ip=UK_ADDRESS, user_agent=FIREFOX_WINDOWS, request_id="req-0123456789"):
    token = set_current(RequestFacts(request_id, ip, user_agent))
    try:
        yield
    finally:
        reset(token)


def record_at(when: datetime.datetime | None, action, **kwargs):
    """Record an event as if it happened at `when` (now when None), from a UK browser."""
    ip = kwargs.pop("ip", UK_ADDRESS)
    user_agent = kwargs.pop("user_agent", FIREFOX_WINDOWS)
    with request_facts(ip=ip, user_agent=user_agent):
        if when is None:
            return audit.record(action, **kwargs)
        with mock.patch("django.utils.timezone.now", return_value=when):
            return audit.record(action, **kwargs)
