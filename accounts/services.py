"""Account actions: sign-in and sign-out, settings lists and access emails.

The user record itself (creation, changes, access, the Login flag) is written by `accounts.users`.

Every write here checks its rules (owner, no escalation, row version), changes the rows, bumps
permission versions when access can move, and writes its audit event, in one transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

import audit
from audit.choices import AuditAction
from delivery import email as outbox
from delivery.choices import EmailKind
from roles import guards
from security.choices import SignInFailure

from .choices import AuthSource, UserKind
from .models import (
    CommissionProfile,
    Department,
    PasswordSetToken,
    SettingsListItem,
    UpdateReason,
    User,
)
from .takeover import services as takeover
from .users import void_password_links

# ---------------------------------------------------------------------------------------------
# Sign-in and sign-out


def record_sign_in(request, user, *, method: str = "password", second_factor: str = "") -> None:
    """Start the user's session (a new session key) and record the sign-in."""
    with transaction.atomic():
        auth.login(request, user, backend="accounts.backends.PortalBackend")
        now = timezone.now()
        request.session["signed_in_at"] = now.isoformat()
        request.session["auth_method"] = method
        type(user).objects.filter(pk=user.pk).update(last_sign_in_at=now)
        audit.record(
            AuditAction.SIGN_IN,
            actor=user,
            target=user,
            method=method,
            context={"second_factor": second_factor} if second_factor else {},
        )
        takeover.observe_sign_in(user, now=now)


def record_sign_in_failure(login: str, reason: str, user=None, *, method: str = "password") -> None:
    """Record a refused sign-in with its exact reason (never shown to the person)."""
    with transaction.atomic():
        audit.record(
            AuditAction.SIGN_IN_FAILED,
            actor=None,
            actor_label=(login or "")[:150],
            target=user,
            owner=getattr(user, "owner", None),
            subject_user=user,
            reason=SignInFailure.LABELS.get(reason, reason),
            method=method,
            context={"reason": reason, "login": (login or "")[:150]},
        )


def sign_out(request) -> None:
    """End the current session and record it."""
    user = request.user
    with transaction.atomic():
        if user.is_authenticated:
            audit.record(AuditAction.SIGN_OUT, actor=user, target=user)
        auth.logout(request)


# ---------------------------------------------------------------------------------------------
# Settings lists: departments, update reasons, commission profiles

SETTINGS_LISTS: dict[str, type[SettingsListItem]] = {
    "departments": Department,
    "update_reasons": UpdateReason,
    "commission_profiles": CommissionProfile,
}


def _clean_name(model: type[SettingsListItem], owner_id: int, name: str, exclude_pk=None) -> str:
    name = " ".join((name or "").split())
    max_length = model._meta.get_field("name").max_length
    if not name:
        raise ValidationError({"name": "Enter a name."})
    if len(name) > max_length:
        raise ValidationError({"name": f"Use at most {max_length} characters."})
    clash = model.objects.filter(owner_id=owner_id, name__iexact=name)
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ValidationError({"name": "This list already has an entry with this name."})
    return name


def _save_name(save) -> None:
    """Run a save that can meet the unique name constraint of a concurrent save."""
    try:
        with transaction.atomic():
            save()
    except IntegrityError as exc:
        raise ValidationError(
            {"name": "This name was added a moment ago. Choose another."}
        ) from exc


def _settings_context(item: SettingsListItem) -> dict:
    return {"list": str(item._meta.verbose_name_plural)}


def create_settings_item(
    model: type[SettingsListItem], *, actor: User, reason: str, name: str
) -> SettingsListItem:
    """Add an entry to one of the actor's owner's settings lists."""
    with transaction.atomic():
        name = _clean_name(model, actor.owner_id, name)
        item = model(owner_id=actor.owner_id, name=name)
        _save_name(item.save)
        audit.record(
            AuditAction.SETTINGS_ITEM_CREATED,
            actor=actor,
            target=item,
            changes={"name": [None, name]},
            context=_settings_context(item),
            reason=reason,
        )
    return item


def rename_settings_item(item: SettingsListItem, *, actor: User, reason: str, name: str) -> None:
    """Rename a settings list entry; records that point to it show the new name."""
    with transaction.atomic():
        _check_item_owner(item, actor)
        name = _clean_name(type(item), actor.owner_id, name, exclude_pk=item.pk)
        if name == item.name:
            return
        old = item.name
        type(item).objects.filter(pk=item.pk).update(name=name)
        item.name = name
        audit.record(
            AuditAction.SETTINGS_ITEM_CHANGED,
            actor=actor,
            target=item,
            changes={"name": [old, name]},
            context=_settings_context(item),
            reason=reason,
        )


def set_settings_item_retired(
    item: SettingsListItem, *, actor: User, reason: str, retired: bool
) -> None:
    """Retire a settings list entry (kept for the records that use it, offered no more), or
    restore a retired one."""
    with transaction.atomic():
        _check_item_owner(item, actor)
        if item.retired == retired:
            raise ValidationError(f"{item.name} is already {'retired' if retired else 'in use'}.")
        type(item).objects.filter(pk=item.pk).update(retired=retired)
        item.retired = retired
        audit.record(
            AuditAction.SETTINGS_ITEM_RETIRED if retired else AuditAction.SETTINGS_ITEM_CHANGED,
            actor=actor,
            target=item,
            changes={"retired": [not retired, retired]},
            context=_settings_context(item),
            reason=reason,
        )


def _check_item_owner(item: SettingsListItem, actor: User) -> None:
    if item.owner_id != actor.owner_id:
        raise Http404("Not found.")


# ---------------------------------------------------------------------------------------------
# Access email and the set-password link


@dataclass(frozen=True)
class AccessLink:
    """What the access email carried: the link's expiry (never the link itself)."""

    expires_at: datetime.datetime
    sent_to: str


def token_hash(token: str) -> str:
    """Return the stored form of a set-password token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def access_link_hours() -> int:
    return max(1, int(getattr(settings, "ACCESS_LINK_HOURS", 72)))


def check_can_receive_access_email(user: User) -> None:
    """Refuse users for whom a local password link makes no sense, saying why."""
    if user.auth_source == AuthSource.SAML:
        raise ValidationError(
            f"{user.label} signs in through the identity provider (SSO), so no local password "
            "link is sent. Their password is managed there."
        )
    if user.kind == UserKind.API:
        raise ValidationError(f"{user.label} is an API user and never signs in to the application.")
    if not user.allow_login:
        raise ValidationError(f"{user.label} is deactivated: reactivate the user first.")


def send_access_email(
    user: User, *, actor: User, reason: str = "", now: datetime.datetime | None = None
) -> AccessLink:
    """Email the user their login name and a single-use, time-limited link to set a password.

    Only the token's hash is stored and the link is never shown to staff; a newer link voids
    the older ones. The email goes to the outbox in the same transaction (its body encrypted
    until it is sent) and the worker sends it: the action succeeds while the mail server is
    away, and the mail goes out once it is back, unless the link expired first.
    """
    now = now or timezone.now()
    hours = access_link_hours()
    with transaction.atomic():
        guards.check_can_manage_user(actor, user)
        check_can_receive_access_email(user)
        void_password_links(user, now)
        token = secrets.token_urlsafe(32)
        expires_at = now + datetime.timedelta(hours=hours)
        PasswordSetToken.objects.create(
            user=user,
            token_hash=token_hash(token),
            created_by=actor,
            created_at=now,
            expires_at=expires_at,
        )
        context = {
            "user": user,
            "link": settings.PUBLIC_URL + reverse("accounts:set_password", args=[token]),
            "sign_in_url": settings.PUBLIC_URL + reverse("accounts:sign_in"),
            "hours": hours,
            "expires_at": expires_at,
        }
        outbox.queue(
            to=user.email,
            subject=render_to_string("accounts/email/access_email_subject.txt", context).strip(),
            body=render_to_string("accounts/email/access_email.txt", context),
            kind=EmailKind.ACCESS_EMAIL,
            owner=user.owner,
            user=user,
            send_before=expires_at,
        )
        audit.record(
            AuditAction.ACCESS_EMAIL_SENT,
            actor=actor,
            target=user,
            reason=reason or None,
            context={"to": user.email, "expires_at": expires_at, "hours": hours},
        )
    return AccessLink(expires_at=expires_at, sent_to=user.email)


class LinkNotUsable(Exception):
    """A set-password link that is unknown, used, voided, expired, or for a user who cannot
    use a local password any more; the page says the same thing for all of them."""


def find_password_set_token(token: str, *, now=None) -> PasswordSetToken:
    """Return the usable token record of `token`, or raise LinkNotUsable."""
    if not token or len(token) > 200:
        raise LinkNotUsable
    record = (
        PasswordSetToken.objects.usable(now)
        .select_related("user", "user__owner")
        .filter(token_hash=token_hash(token))
        .first()
    )
    if record is None:
        raise LinkNotUsable
    try:
        check_can_receive_access_email(record.user)
    except ValidationError as exc:
        raise LinkNotUsable from exc
    return record


def set_password_with_link(token: str, password: str, *, now=None) -> User:
    """Set the password of the link's user by the owner's policy and use up the link.

    The password goes through the one password service (policy, history, audit); the person is
    not signed in: they sign in with the new password on the sign-in page.
    """
    from security.services import PasswordVia, set_password

    now = now or timezone.now()
    with transaction.atomic():
        record = find_password_set_token(token, now=now)
        locked = PasswordSetToken.objects.select_for_update().get(pk=record.pk)
        if locked.used_at or locked.voided_at:
            raise LinkNotUsable
        user = record.user
        set_password(user, password, actor=None, via=PasswordVia.SET_PASSWORD_LINK)
        User.objects.filter(pk=user.pk).update(row_version=F("row_version") + 1, updated_at=now)
        PasswordSetToken.objects.filter(pk=record.pk).update(used_at=now)
        void_password_links(user, now)
        user.refresh_from_db()
    return user


def record_user_export(*, actor: User, filters: Mapping[str, Any]) -> None:
    """Record that the actor exported the users list (a view of personal data)."""
    with transaction.atomic():
        audit.record(
            AuditAction.SENSITIVE_VIEWED,
            actor=actor,
            owner=actor.owner_id,
            context={"export": "users_csv", "filters": dict(filters)},
        )
