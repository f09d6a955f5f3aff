"""The request facts (id, IP, user agent) that every audit event of a request carries."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestFacts:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""


_current: contextvars.ContextVar[RequestFacts] = contextvars.ContextVar(
    "audit_request_facts",
    default=RequestFacts(),  # noqa: B039 - frozen dataclass
)


def set_current(facts: RequestFacts) -> contextvars.Token:
    """Make `facts` the request facts of the code running now (the request-id middleware)."""
    return _current.set(facts)


def reset(token: contextvars.Token) -> None:
    _current.reset(token)


def current() -> RequestFacts:
    """Return the facts of the request being served, or empty facts outside a request."""
    return _current.get()
