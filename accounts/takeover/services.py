"""Account-takeover signals: unusual sign-ins and account changes, told to the person.

- `observe_sign_in(user)`, called by `accounts.services.record_sign_in` in the sign-in's own
  transaction (password, two-factor, passkey and single sign-on alike): the browser family
  ("Firefox on Windows", the version left out) and the country of the sign-in are remembered
  for the person. The first sign-in from a family or a country not seen for them before records
  UNFAMILIAR_SIGN_IN and emails them, unless their owner turned that email off
  (`PasswordPolicy.notify_new_sign_in`). A person's very first sign-in (nothing seen yet) only
  sets what is familiar; addresses on this machine or a private network have no country.
- `notify_change(user, change, actor=…)`, called by the services that change a password, an
  email address or an authenticator: always emailed (an address change also to the old
  address, where a hijacker's change would otherwise go unnoticed) and recorded as
  SECURITY_NOTICE_SENT.

Every email links to "Your sessions", where the person signs out of what they do not recognise.
Emails go through the outbox (`delivery.email.queue`) in the caller's transaction: a sign-in or
change that rolls back sends nothing, a committed one always has its email.
"""

from __future__ import annotations

import datetime
import re
import zoneinfo

from django.conf import settings
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

import audit
from audit import context as audit_context
from audit import geo
from audit.choices import AuditAction
from audit.display import EMPTY, summarise_user_agent
from delivery import email as outbox
from delivery.choices import EmailKind

from .models import KnownSignIn


class Change:
    """What changed on an account, as the notice names it."""

    PASSWORD = "password"
    EMAIL = "email"
    AUTHENTICATORS = "authenticators"

    SUBJECTS = {
        PASSWORD: "your password was changed",
        EMAIL: "your email address was changed",
        AUTHENTICATORS: "your sign-in methods changed",
    }


_VERSION = re.compile(r" \d+(?= on |$)")
_NO_COUNTRY = {geo.THIS_MACHINE, geo.PRIVATE_NETWORK, geo.UNKNOWN}


def device_family(user_agent: str) -> str:
    """Return the browser and system of a User-Agent without the version ('' when none sent)."""
    summary = summarise_user_agent(user_agent or "")
    if summary == EMPTY:
        return ""
    return _VERSION.sub("", summary)[:100]


def country_of(ip: str | None) -> str:
    """Return the country of an address ('' for this machine, a private network or unknown)."""
    place = geo.locate(ip)
    if place in _NO_COUNTRY:
        return ""
    return place.rsplit(", ", 1)[-1][:100]  # "Berlin, Germany" with a MaxMind City database


def their_time(user, moment: datetime.datetime | None = None) -> str:
    """Return `moment` (default now) as the person reads it, in their own time zone."""
    zone: datetime.tzinfo
    try:
        zone = zoneinfo.ZoneInfo(user.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        zone = datetime.UTC
    return f"{timezone.localtime(moment or timezone.now(), zone):%d %b %Y at %H:%M %Z}"


def sessions_url() -> str:
    return settings.PUBLIC_URL + reverse("security:my_sessions")


def _queue(user, *, to: str, template: str, context: dict) -> None:
    context = {"user": user, "sessions_url": sessions_url(), **context}
    outbox.queue(
        to=to,
        subject="Billing Access: " + render_to_string(f"{template}_subject.txt", context).strip(),
        body=render_to_string(f"{template}.txt", context),
        kind=EmailKind.ACCOUNT_NOTICE,
        owner=user.owner_id,
        user=user,
    )


# Sign-ins ----------------------------------------------------------------------------------


def observe_sign_in(user, *, now: datetime.datetime | None = None) -> bool:
    """Remember where this sign-in came from; signal a new browser family or country.

    Call inside the sign-in's transaction, once the session is started and SIGN_IN recorded.
    Return whether the sign-in was unfamiliar.
    """
    now = now or timezone.now()
    facts = audit_context.current()
    seen = {
        (kind, value)
        for kind, value in KnownSignIn.objects.filter(user_id=user.pk).values_list("kind", "value")
    }
    kinds_seen = {kind for kind, _ in seen}
    current = {
        KnownSignIn.Kind.DEVICE: device_family(facts.user_agent),
        KnownSignIn.Kind.COUNTRY: country_of(facts.ip),
    }
    new = {
        kind: value
        for kind, value in current.items()
        if value and (kind, value) not in seen and kind in kinds_seen
    }
    rows = [(kind, value) for kind, value in current.items() if value]
    KnownSignIn.objects.bulk_create(
        [
            KnownSignIn(
                user_id=user.pk, kind=kind, value=value, first_seen_at=now, last_seen_at=now
            )
            for kind, value in rows
            if (kind, value) not in seen
        ],
        ignore_conflicts=True,  # a parallel sign-in from the same place wrote it first
    )
    for kind, value in rows:
        if (kind, value) in seen:
            KnownSignIn.objects.filter(user_id=user.pk, kind=kind, value=value).update(
                last_seen_at=now
            )
    if not new:
        return False
    from security.validators import policy_for

    emailed = bool(policy_for(user).notify_new_sign_in and user.email)
    device = current[KnownSignIn.Kind.DEVICE]
    country = current[KnownSignIn.Kind.COUNTRY]
    audit.record(
        AuditAction.UNFAMILIAR_SIGN_IN,
        actor=user,
        target=user,
        context={
            "device": device,
            "new_device": KnownSignIn.Kind.DEVICE in new,
            "country": country,
            "new_country": KnownSignIn.Kind.COUNTRY in new,
            "emailed": emailed,
        },
    )
    if emailed:
        _queue(
            user,
            to=user.email,
            template="takeover/email/new_sign_in",
            context={
                "when": their_time(user, now),
                "device": device or "an unknown browser",
                "place": geo.locate(facts.ip),
                "ip": facts.ip or "unknown",
                "new_device": KnownSignIn.Kind.DEVICE in new,
                "new_country": KnownSignIn.Kind.COUNTRY in new,
                "country": country,
            },
        )
    return True


# Changes to the account --------------------------------------------------------------------


def notify_change(user, change: str, *, actor=None, old_email: str = "", details: str = "") -> int:
    """Email the person that `change` happened to their account; return the emails queued.

    Call inside the transaction of the change, after its own audit event. `actor` is who made
    it (None: the person through a link or a code); `details` a short plain line for the email
    ("Passkey "Work laptop" added").
    """
    if change not in Change.SUBJECTS:
        raise ValueError(f"Unknown change {change!r}")
    recipients = [address for address in (user.email, old_email) if address]
    recipients = list(dict.fromkeys(recipients))  # the same address once
    if not recipients:
        return 0
    by_someone_else = actor is not None and getattr(actor, "pk", None) != user.pk
    context = {
        "change": change,
        "subject": Change.SUBJECTS[change],
        "when": their_time(user),
        "by": actor.label if by_someone_else else "",
        "details": details,
        "old_email": old_email,
        "new_email": user.email,
    }
    for address in recipients:
        _queue(user, to=address, template="takeover/email/account_change", context=context)
    audit.record(
        AuditAction.SECURITY_NOTICE_SENT,
        actor=actor,
        actor_label="" if actor is not None else user.username,
        target=user,
        context={"change": change, "emails": len(recipients), "details": details},
    )
    return len(recipients)


def on_password_changed(sender, *, user, actor, **kwargs) -> None:
    """Tell the person their password changed (`security.signals.password_changed`)."""
    notify_change(user, Change.PASSWORD, actor=actor)
