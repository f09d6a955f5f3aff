"""Account actions: sign-in and sign-out, user administration, settings lists and access emails.

Every write here checks its rules (owner, no escalation, row version), changes the rows, bumps
permission versions when access can move, and writes its audit event, in one transaction.
"""

from __future__ import annotations

import datetime
import hashlib
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib import auth
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import EmailMessage
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.http import Http404
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.models import AuditEvent
from audit.services import diff
from roles import guards, versions
from roles.guards import EscalationRefused

from .backends import SignInFailure
from .choices import AuthSource, UserKind
from .models import (
    CommissionProfile,
    Department,
    PasswordSetToken,
    SettingsListItem,
    UpdateReason,
    User,
)

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
# Users

DETAIL_FIELDS = (
    "first_name",
    "last_name",
    "display_name",
    "username",
    "email",
    "locale",
    "time_zone",
)
ACCESS_FIELDS = (
    "kind",
    "auth_source",
    "allow_login",
    "allow_api_read",
    "allow_api_write",
    "allow_email_reports",
    "customer_access_scope",
    "role",
    "privilege_level",
    "expert_level",
    "is_account_manager",
    "is_commission_holder",
)
COMMISSION_FIELDS = (
    "commission_reference_date",
    "commission_annual_target",
    "commission_target_one_off",
    "commission_target_recurring",
    "commission_target_calls",
    "one_off_commission_profile",
    "recurring_commission_profile",
    "call_commission_profile",
    "commission_paid",
)
SCALAR_FIELDS = DETAIL_FIELDS + ACCESS_FIELDS + COMMISSION_FIELDS
M2M_FIELDS = ("departments", "extra_role_groups")
EDITABLE_FIELDS = SCALAR_FIELDS + M2M_FIELDS
# A change of any of these can move the user's effective permissions.
PERMISSION_FIELDS = frozenset(
    {
        "kind",
        "allow_login",
        "allow_api_read",
        "allow_api_write",
        "role",
        "privilege_level",
        "extra_role_groups",
    }
)
# A change of any of these can take away the ability to administer users.
ADMIN_LOSING_FIELDS = frozenset({"kind", "allow_login", "role", "extra_role_groups"})
_OWNED_RELATIONS = {
    "role": "roles.Role",
    "one_off_commission_profile": CommissionProfile,
    "recurring_commission_profile": CommissionProfile,
    "call_commission_profile": CommissionProfile,
}
EXPERT_LEVEL_FOR_BULK = 2


class RecordChanged(ValidationError):
    """The record was saved by someone else since the form was opened; nothing was saved.

    `current_row_version` is the version to resubmit against; `events` lists what changed since
    (newest first), each an audit event with its `changes`.
    """

    def __init__(self, message: str, *, current_row_version: int, events: list):
        super().__init__(message, code="record_changed")
        self.current_row_version = current_row_version
        self.events = events


def _value_label(value: Any) -> Any:
    if isinstance(value, models.Model):
        return str(value)
    return value


def snapshot(user: User) -> dict[str, Any]:
    """Return the editable fields of a user as audit values (related rows by their names)."""
    values: dict[str, Any] = {}
    for name in SCALAR_FIELDS:
        values[name] = _value_label(getattr(user, name))
    for name in M2M_FIELDS:
        values[name] = sorted(str(obj) for obj in getattr(user, name).all())
    return values


def _planned_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """Return the audit values of a submitted data mapping (the same shape as `snapshot`)."""
    planned = {}
    for name, value in data.items():
        if name in M2M_FIELDS:
            planned[name] = sorted(str(obj) for obj in value)
        else:
            planned[name] = _value_label(value)
    return planned


def _check_data(actor: User, data: Mapping[str, Any]) -> None:
    """Refuse unknown fields and related rows of another owner (a crafted request)."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable here: {', '.join(sorted(unknown))}.")
    for name in ("role", *_OWNED_RELATIONS):
        value = data.get(name)
        if value is not None and value.owner_id != actor.owner_id:
            raise ValidationError({name: "Choose from your organisation's list."})
    for name in M2M_FIELDS:
        for obj in data.get(name) or ():
            if obj.owner_id != actor.owner_id:
                raise ValidationError({name: "Choose from your organisation's list."})


def _check_identity_free(data: Mapping[str, Any], *, exclude_pk: int | None = None) -> None:
    """Refuse a username or email that another user holds in any letter case."""
    errors = {}
    others = User.objects.exclude(pk=exclude_pk) if exclude_pk else User.objects.all()
    if "username" in data and others.filter(username__ci=data["username"]).exists():
        errors["username"] = "This username is already taken. Choose another."
    if "email" in data and others.filter(email__ci=data["email"]).exists():
        errors["email"] = "Another user already has this email address."
    if errors:
        raise ValidationError(errors)


def _check_access_rules(
    actor: User,
    target: User,
    after: Mapping[str, Any],
    *,
    changed: Iterable[str],
    added_groups: Iterable,
) -> None:
    """Refuse what the actor may not hand out: privilege, expert level, role groups."""
    changed = set(changed)
    guards.check_can_manage_user(
        actor,
        target,
        new_privilege_level=after.get("privilege_level") if "privilege_level" in changed else None,
    )
    expert = after.get("expert_level")
    if (
        "expert_level" in changed
        and expert is not None
        and not actor.is_superuser
        and expert > actor.expert_level
    ):
        raise EscalationRefused(
            f"You cannot set an expert level above your own ({actor.expert_level})."
        )
    if "role" in changed and after.get("role") is not None:
        guards.check_can_grant_groups(actor, after["role"].role_groups.all())
    added_groups = list(added_groups)
    if added_groups:
        guards.check_can_grant_groups(actor, added_groups)


def _save_identity(save) -> None:
    """Run a save that can meet the case-insensitive unique constraints of a concurrent save."""
    try:
        with transaction.atomic():
            save()
    except IntegrityError as exc:
        raise ValidationError(
            "Another user took this username or email address a moment ago. Choose another."
        ) from exc


def create_user(*, actor: User, data: Mapping[str, Any]) -> User:
    """Create a user of the actor's owner from validated form data, without a password.

    The person gets a password through the access email (or signs in through the identity
    provider). An API user never gets the Login flag.
    """
    data = dict(data)
    _check_data(actor, data)
    departments = list(data.pop("departments", None) or [])
    groups = list(data.pop("extra_role_groups", None) or [])
    if data.get("kind") == UserKind.API:
        data["allow_login"] = False  # an API user gets no application sign-in
    with transaction.atomic():
        user = User(owner_id=actor.owner_id, **data)
        user.email = User.objects.normalize_email(user.email)
        probe = User(owner_id=actor.owner_id, privilege_level=0)
        _check_access_rules(
            actor,
            probe,
            {"privilege_level": user.privilege_level, "expert_level": user.expert_level, **data},
            changed={"privilege_level", "expert_level", "role"},
            added_groups=groups,
        )
        _check_identity_free({"username": user.username, "email": user.email})
        user.set_unusable_password()
        now = timezone.now()
        user.created_at = user.updated_at = now
        _save_identity(user.save)
        user.departments.set(departments)
        user.extra_role_groups.set(groups)
        audit.record(
            AuditAction.USER_CREATED,
            actor=actor,
            target=user,
            changes=diff({}, snapshot(user)),
            context={"row_version": user.row_version},
        )
    return user


def update_user(
    user: User,
    *,
    actor: User,
    data: Mapping[str, Any],
    expected_row_version: int,
    reason: str = "",
    details: str = "",
) -> dict[str, list]:
    """Change a user's record; return `{field: [before, after]}` of what changed.

    The save wins only if the record is still at `expected_row_version` (checked by a conditional
    UPDATE, so two concurrent saves cannot both win); otherwise `RecordChanged` says what changed
    in between and nothing is saved. The Update Reason and Update Details go on the audit event.
    """
    data = dict(data)
    _check_data(actor, data)
    with transaction.atomic():
        current = User.objects.select_related("owner", "role").get(pk=user.pk)
        before = snapshot(current)
        planned = {**before, **_planned_values(data)}
        changes = diff(before, planned)
        if current.row_version != expected_row_version:
            raise _record_changed(current, expected_row_version)
        if not changes:
            return {}
        _check_idp_managed(current, changes)
        after = {name: data.get(name, getattr(current, name)) for name in SCALAR_FIELDS}
        if after["kind"] == UserKind.API and after["allow_login"]:
            after["allow_login"] = False  # an API user gets no application sign-in
            changes["allow_login"] = [before["allow_login"], False]
        old_groups = set(current.extra_role_groups.all())
        new_groups = set(data.get("extra_role_groups", old_groups))
        _check_access_rules(
            actor,
            current,
            after,
            changed=changes,
            added_groups=new_groups - old_groups,
        )
        if "username" in changes or "email" in changes:
            _check_identity_free(
                {k: after[k] for k in ("username", "email") if k in changes}, exclude_pk=user.pk
            )
        was_admin = bool(ADMIN_LOSING_FIELDS & set(changes)) and guards.administers_users(current)
        update = {
            name: after[name]
            for name in SCALAR_FIELDS
            if name in changes and name not in M2M_FIELDS
        }
        if "email" in update:
            update["email"] = User.objects.normalize_email(update["email"])
        if update.get("auth_source") == AuthSource.SAML:
            current.set_unusable_password()
            update["password"] = current.password
            _void_tokens(current, timezone.now())
        new_version = expected_row_version + 1
        saved = []

        def save():
            saved.append(
                User.objects.filter(pk=user.pk, row_version=expected_row_version).update(
                    **update, row_version=F("row_version") + 1, updated_at=timezone.now()
                )
            )

        _save_identity(save)
        if not saved[0]:
            raise _record_changed(User.objects.get(pk=user.pk), expected_row_version)
        current.refresh_from_db()
        if "departments" in changes:
            current.departments.set(data["departments"])
        if "extra_role_groups" in changes:
            current.extra_role_groups.set(data["extra_role_groups"])
        if PERMISSION_FIELDS & set(changes):
            versions.bump_user(current)
        if was_admin:
            guards.check_keeps_an_administrator(current.owner, would_lose=[current])
        audit.record(
            AuditAction.USER_CHANGED,
            actor=actor,
            target=current,
            changes=changes,
            reason=reason,
            details=details,
            context={"row_version": new_version},
        )
    user.refresh_from_db()
    return changes


def idp_managed_fields(user: User) -> frozenset[str]:
    """Return the fields of `user` that its identity provider sets at every sign-in."""
    if user.pk is None or not user.is_sso_managed:
        return frozenset()
    from scim.services import idp_managed_fields as provisioned
    from security.saml_services import idp_managed_fields as managed

    return managed(user) | provisioned(user)


def _check_idp_managed(user: User, changes: Mapping[str, Any]) -> None:
    """Refuse changing a field that the user's identity provider owns (it would be undone)."""
    owned = sorted(set(changes) & idp_managed_fields(user))
    if owned:
        raise ValidationError(
            dict.fromkeys(owned, "Set by the identity provider at every sign-in; change it there.")
        )


def _record_changed(current: User, expected_row_version: int) -> RecordChanged:
    events = list(
        AuditEvent.objects.filter(
            subject_user_id=current.pk,
            target_type="user",
            target_id=str(current.pk),
            context__row_version__gt=expected_row_version,
        ).order_by("-occurred_at", "-id")[:20]
    )
    who = ", ".join(sorted({e.actor_label for e in events if e.actor_label})) or "someone else"
    return RecordChanged(
        f"{current.label} was changed by {who} after you opened this form, so nothing was "
        "saved. Review their changes below; saving again applies your values over them.",
        current_row_version=current.row_version,
        events=events,
    )


def _set_login_flag(
    user: User,
    *,
    actor: User | None,
    allow: bool,
    reason: str,
    details: str,
    context: dict,
    actor_label: str = "",
    method: str = "",
) -> None:
    if actor is None and not actor_label:
        raise ValueError("Say who acts: an actor, or an actor_label for a system source.")
    if actor is not None:
        guards.check_can_manage_user(actor, user)
    if user.allow_login == allow:
        state = "already active" if allow else "already deactivated"
        raise ValidationError(f"{user.label} is {state}.")
    if allow and user.kind == UserKind.API:
        raise ValidationError(f"{user.label} is an API user and cannot sign in to the application.")
    if not allow and actor is not None and user.pk == actor.pk:
        raise ValidationError("You cannot deactivate yourself.")
    was_admin = not allow and guards.administers_users(user)
    User.objects.filter(pk=user.pk).update(
        allow_login=allow, row_version=F("row_version") + 1, updated_at=timezone.now()
    )
    user.refresh_from_db(fields=["allow_login", "row_version", "updated_at"])
    versions.bump_user(user)
    if was_admin:
        guards.check_keeps_an_administrator(user.owner, would_lose=[user])
    audit.record(
        AuditAction.USER_REACTIVATED if allow else AuditAction.USER_DEACTIVATED,
        actor=actor,
        actor_label=actor_label,
        target=user,
        changes={"allow_login": [not allow, allow]},
        reason=reason,
        details=details,
        context={**context, "row_version": user.row_version},
        method=method,
    )


def deactivate_user(
    user: User,
    *,
    actor: User | None,
    reason: str = "",
    details: str = "",
    actor_label: str = "",
    method: str = "",
) -> None:
    """Remove the Login flag: sign-in is refused at once and live sessions end at their next
    request (the session's user is no longer active). History and settings are kept.

    `actor` None means a system source acting (the identity provider over SCIM), named by
    `actor_label`; it is not subject to the actor's own limits.
    """
    with transaction.atomic():
        _set_login_flag(
            user,
            actor=actor,
            allow=False,
            reason=reason,
            details=details,
            context={},
            actor_label=actor_label,
            method=method,
        )


def reactivate_user(
    user: User,
    *,
    actor: User | None,
    reason: str = "",
    details: str = "",
    actor_label: str = "",
    method: str = "",
) -> None:
    """Give the Login flag back to a deactivated interactive user (`actor` None as above)."""
    with transaction.atomic():
        _set_login_flag(
            user,
            actor=actor,
            allow=True,
            reason=reason,
            details=details,
            context={},
            actor_label=actor_label,
            method=method,
        )


def bulk_deactivate(
    users: Iterable[User], *, actor: User, reason: str, details: str = ""
) -> list[User]:
    """Deactivate several users at once, all or none; needs expert level 2 or more.

    Users already deactivated are left as they are; return the users deactivated now.
    """
    if not actor.is_superuser and actor.expert_level < EXPERT_LEVEL_FOR_BULK:
        raise PermissionDenied(
            f"Bulk deactivation needs expert level {EXPERT_LEVEL_FOR_BULK} or more."
        )
    if not reason:
        raise ValidationError({"reason": "Choose an Update Reason."})
    users = [u for u in users if u.allow_login]
    with transaction.atomic():
        for user in users:
            _set_login_flag(
                user,
                actor=actor,
                allow=False,
                reason=reason,
                details=details,
                context={"bulk": True, "count": len(users)},
            )
    return users


def has_history(user: User) -> bool:
    """Say whether any audit event concerns or was made by this user, beyond its creation."""
    concerned = AuditEvent.objects.filter(Q(subject_user_id=user.pk) | Q(actor_id=user.pk))
    creation = Q(action=AuditAction.USER_CREATED, subject_user_id=user.pk) & ~Q(actor_id=user.pk)
    return concerned.exclude(creation).exists()


def delete_user(user: User, *, actor: User | None, actor_label: str = "", method: str = "") -> None:
    """Delete a user that has no history (created by mistake); anyone else is deactivated.

    `actor` None means a system source (the identity provider), named by `actor_label`.
    """
    with transaction.atomic():
        if actor is None and not actor_label:
            raise ValueError("Say who acts: an actor, or an actor_label for a system source.")
        if actor is not None:
            guards.check_can_manage_user(actor, user)
        if actor is not None and user.pk == actor.pk:
            raise ValidationError("You cannot delete yourself.")
        if has_history(user):
            raise ValidationError(
                f"{user.label} has history in the audit log, so the record is kept. "
                "Deactivate the user instead."
            )
        audit.record(
            AuditAction.USER_DELETED,
            actor=actor,
            actor_label=actor_label,
            target=user,
            changes=diff(snapshot(user), {}),
            method=method,
        )
        try:
            with transaction.atomic():
                User.objects.filter(pk=user.pk).delete()
        except models.ProtectedError as exc:
            raise ValidationError(
                f"{user.label} is still referenced by other records, so the record is kept. "
                "Deactivate the user instead."
            ) from exc


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


def _settings_context(item: SettingsListItem) -> dict:
    return {"list": str(item._meta.verbose_name_plural)}


def create_settings_item(
    model: type[SettingsListItem], *, actor: User, name: str
) -> SettingsListItem:
    """Add an entry to one of the actor's owner's settings lists."""
    with transaction.atomic():
        name = _clean_name(model, actor.owner_id, name)
        item = model(owner_id=actor.owner_id, name=name)
        _save_identity(item.save)
        audit.record(
            AuditAction.SETTINGS_ITEM_CREATED,
            actor=actor,
            target=item,
            changes={"name": [None, name]},
            context=_settings_context(item),
        )
    return item


def rename_settings_item(item: SettingsListItem, *, actor: User, name: str) -> None:
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
        )


def set_settings_item_retired(item: SettingsListItem, *, actor: User, retired: bool) -> None:
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


def _void_tokens(user: User, now: datetime.datetime) -> None:
    PasswordSetToken.objects.usable(now).filter(user=user).update(voided_at=now)


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
    user: User, *, actor: User, now: datetime.datetime | None = None
) -> AccessLink:
    """Email the user their login name and a single-use, time-limited link to set a password.

    Only the token's hash is stored and the link is never shown to staff; a newer link voids
    the older ones. If the email cannot be sent, nothing is kept.
    """
    now = now or timezone.now()
    hours = access_link_hours()
    with transaction.atomic():
        guards.check_can_manage_user(actor, user)
        check_can_receive_access_email(user)
        _void_tokens(user, now)
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
        message = EmailMessage(
            subject=render_to_string("accounts/email/access_email_subject.txt", context).strip(),
            body=render_to_string("accounts/email/access_email.txt", context),
            to=[user.email],
        )
        # Sent before the audit event takes the owner's chain lock, and inside the transaction
        # so that a refused email leaves no usable link and no "sent" event behind.
        message.send()
        audit.record(
            AuditAction.ACCESS_EMAIL_SENT,
            actor=actor,
            target=user,
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
        _void_tokens(user, now)
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
