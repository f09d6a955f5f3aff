"""The user record: creation, changes, access (role and extra role groups), the Login flag.

One writer per fact. Every door (screens, JSON API, access reviews, SAML sign-in, SCIM) creates a
user through `create_user` and changes one through `update_user`, or `set_user_access` for the
role and extra role groups alone. The door is passed as `source` and stored on the audit event.
The rules live here once: the actor's limits (owner, privilege, no escalation), the fields an
identity provider owns, the last administrator, lost updates, and the version bump that keeps
the permission cache exact.

`actor` None means a system source acting (an identity provider over SAML or SCIM), named by
`actor_label`; it is not subject to an actor's own limits, only to the record's rules.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.http import Http404
from django.utils import timezone

import audit
from audit.choices import AuditAction
from audit.models import AuditEvent
from audit.services import diff
from roles import catalog, guards, permissions, sod, versions
from roles.guards import EscalationRefused
from roles.impact import Proposal
from security.services import end_tracked_sessions

from .choices import IDP_SOURCES, AccessSource, AuthSource, UserKind
from .models import SEARCHED_FIELDS, CommissionProfile, PasswordSetToken, User
from .takeover import services as takeover

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
    "is_emergency_account",
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


ACCESS_ONLY = frozenset({"role", "extra_role_groups"})
_KEEP: Any = object()


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


def _check_actor(actor: User | None, actor_label: str) -> None:
    if actor is None and not actor_label:
        raise ValueError("Say who acts: an actor, or an actor_label for a system source.")


def _check_data(owner_id: int, data: Mapping[str, Any]) -> None:
    """Refuse unknown fields and related rows of another owner (a crafted request)."""
    unknown = set(data) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"Not editable here: {', '.join(sorted(unknown))}.")
    for name in ("role", *_OWNED_RELATIONS):
        value = data.get(name)
        if value is not None and value.owner_id != owner_id:
            raise ValidationError({name: "Choose from your organisation's list."})
    for name in M2M_FIELDS:
        for obj in data.get(name) or ():
            if obj.owner_id != owner_id:
                raise ValidationError({name: "Choose from your organisation's list."})


def check_identity_free(data: Mapping[str, Any], *, exclude_pk: int | None = None) -> None:
    """Refuse a username or email that another user holds in any letter case."""
    errors = {}
    others = User.objects.exclude(pk=exclude_pk) if exclude_pk else User.objects.all()
    if "username" in data and others.filter(username__ci=data["username"]).exists():
        errors["username"] = ValidationError(
            "This username is already taken. Choose another.", code="taken"
        )
    if "email" in data and others.filter(email__ci=data["email"]).exists():
        errors["email"] = ValidationError(
            "Another user already has this email address.", code="taken"
        )
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
    if "is_emergency_account" in changed and after.get("is_emergency_account"):
        _check_can_mark_emergency(actor, target)
    if "role" in changed and after.get("role") is not None:
        guards.check_can_grant_groups(actor, after["role"].role_groups.all())
    added_groups = list(added_groups)
    if added_groups:
        guards.check_can_grant_groups(actor, added_groups)


def _check_can_mark_emergency(actor: User, target: User) -> None:
    """An emergency account activates eligible access without approval, so only someone who
    approves access requests may mark one, and never their own."""
    if actor.is_superuser:
        return
    if target.pk is not None and target.pk == actor.pk:
        raise EscalationRefused("You cannot make your own account an emergency account.")
    if not permissions.for_user(actor).has(catalog.ACCESS_REQUESTS, catalog.APPROVE):
        raise EscalationRefused(
            "Marking an emergency account needs Approve on Access Requests, as approving does."
        )


def _save_identity(save) -> None:
    """Run a save that can meet the case-insensitive unique constraints of a concurrent save."""
    try:
        with transaction.atomic():
            save()
    except IntegrityError as exc:
        raise ValidationError(
            "Another user took this username or email address a moment ago. Choose another.",
            code="taken",
        ) from exc


def _context(context: Mapping[str, Any] | None, source: str, **more: Any) -> dict[str, Any]:
    return {**(context or {}), **more, "source": str(source)}


def create_user(
    *,
    actor: User | None,
    data: Mapping[str, Any],
    reason: str,
    source: AccessSource,
    owner=None,
    details: str = "",
    actor_label: str = "",
    method: str = "",
    context: Mapping[str, Any] | None = None,
) -> User:
    """Create a user of the actor's owner (or `owner`, for a system source), without a password.

    The person gets a password through the access email or signs in through the identity
    provider. An API user never gets the Login flag. The actor may hand out no more than they
    hold: privilege and expert level, the role's groups and the extra groups.
    """
    _check_actor(actor, actor_label)
    if owner is None:
        if actor is None:
            raise ValueError("A system source names the owner the user belongs to.")
        owner = actor.owner
    elif actor is not None and not actor.is_superuser and actor.owner_id != owner.pk:
        raise Http404("Not found.")
    data = dict(data)
    _check_data(owner.pk, data)
    departments = list(data.pop("departments", None) or [])
    groups = list(data.pop("extra_role_groups", None) or [])
    if data.get("kind") == UserKind.API:
        data["allow_login"] = False  # an API user gets no application sign-in
    role = data.pop("role", None)
    with transaction.atomic():
        user = User(owner=owner, **data)
        user.email = User.objects.normalize_email(user.email)
        if actor is not None:
            probe = User(owner_id=owner.pk, privilege_level=0)
            _check_access_rules(
                actor,
                probe,
                {
                    "privilege_level": user.privilege_level,
                    "expert_level": user.expert_level,
                    **data,
                    "role": role,
                },
                changed={"privilege_level", "expert_level", "role"},
                added_groups=groups,
            )
        check_identity_free({"username": user.username, "email": user.email})
        user.set_unusable_password()
        now = timezone.now()
        user.created_at = user.updated_at = now
        _save_identity(user.save)
        User.objects.people_changed(owner.pk)
        user.departments.set(departments)
        withheld: list = []
        if role is not None or groups:
            # Separation of duties, judged against the new user holding nothing yet.
            role, groups, withheld = _check_duties(
                user, role, groups, actor=actor, actor_label=actor_label, source=source
            )
            User.objects.filter(pk=user.pk).update(role=role)
            user.role = role
            user.extra_role_groups.set(groups)
        audit.record(
            AuditAction.USER_CREATED,
            actor=actor,
            actor_label=actor_label,
            target=user,
            owner=owner,
            changes=diff({}, snapshot(user)),
            reason=reason,
            details=details,
            method=method,
            context=_context(context, source, row_version=user.row_version),
        )
        _record_withheld(user, withheld, actor_label=actor_label, source=source, method=method)
    return user


def update_user(
    user: User,
    *,
    actor: User | None,
    data: Mapping[str, Any],
    reason: str,
    source: AccessSource,
    expected_row_version: int | None = None,
    details: str = "",
    actor_label: str = "",
    method: str = "",
    context: Mapping[str, Any] | None = None,
) -> dict[str, list]:
    """Change a user's record; return `{field: [before, after]}` of what changed.

    The save wins only if the record is still at `expected_row_version` (the version read now
    when None), checked by a conditional UPDATE so two concurrent saves cannot both win;
    otherwise `RecordChanged` says what
    changed in between and nothing is saved. Fields the user's identity provider owns are
    refused unless the provider itself writes (`source` SAML or SCIM). The Update Reason and
    Update Details go on the audit event.
    """
    _check_actor(actor, actor_label)
    data = dict(data)
    with transaction.atomic():
        current = User.objects.select_related("owner", "role").get(pk=user.pk)
        if actor is not None and not actor.is_superuser and current.owner_id != actor.owner_id:
            raise Http404("Not found.")
        _check_data(current.owner_id, data)
        expected = current.row_version if expected_row_version is None else expected_row_version
        if current.row_version != expected:
            raise _record_changed(current, expected)
        withheld: list = []
        if source in IDP_SOURCES and ACCESS_ONLY & set(data):
            # An identity provider is never refused outright: what would break a blocking
            # separation-of-duties rule is left out, and recorded, the rest applied.
            role, groups, withheld = _check_duties(
                current,
                data.get("role", current.role),
                data.get("extra_role_groups", list(current.extra_role_groups.all())),
                actor=actor,
                actor_label=actor_label,
                source=source,
            )
            data["role"], data["extra_role_groups"] = role, groups
        before = snapshot(current)
        planned = {**before, **_planned_values(data)}
        changes = diff(before, planned)
        if not changes:
            return {}
        if source not in IDP_SOURCES:
            _check_idp_managed(current, changes)
        after = {name: data.get(name, getattr(current, name)) for name in SCALAR_FIELDS}
        if after["kind"] == UserKind.API and after["allow_login"]:
            after["allow_login"] = False  # an API user gets no application sign-in
            changes["allow_login"] = [before["allow_login"], False]
        old_groups = set(current.extra_role_groups.all())
        new_groups = set(data.get("extra_role_groups", old_groups))
        if actor is not None:
            _check_access_rules(
                actor, current, after, changed=changes, added_groups=new_groups - old_groups
            )
        if source not in IDP_SOURCES and ACCESS_ONLY & set(changes):
            _check_duties(
                current,
                after["role"],
                new_groups,
                actor=actor,
                actor_label=actor_label,
                source=source,
            )
        if "username" in changes or "email" in changes:
            check_identity_free(
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
            void_password_links(current, timezone.now())
        saved = []

        def save():
            saved.append(
                User.objects.filter(pk=user.pk, row_version=expected).update(
                    **update, row_version=F("row_version") + 1, updated_at=timezone.now()
                )
            )

        _save_identity(save)
        if not saved[0]:
            raise _record_changed(User.objects.get(pk=user.pk), expected)
        current.refresh_from_db()
        if SEARCHED_FIELDS & set(changes):
            User.objects.people_changed(current.owner_id)
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
            actor_label=actor_label,
            target=current,
            owner=current.owner,
            changes=changes,
            reason=reason,
            details=details,
            method=method,
            context=_context(context, source, row_version=current.row_version),
        )
        _record_withheld(current, withheld, actor_label=actor_label, source=source, method=method)
        if "email" in changes:
            takeover.notify_change(
                current, takeover.Change.EMAIL, actor=actor, old_email=changes["email"][0] or ""
            )
    user.refresh_from_db()
    return changes


def _check_duties(user: User, role, groups, *, actor, actor_label: str, source) -> tuple:
    """Hold a proposed role and extra groups against the separation-of-duties rules.

    From a person's door a blocking violation refuses the change (`sod.SodRefused`); from an
    identity provider's the conflicting role or groups are left out instead. Return the role,
    the groups and what was withheld as (part, rule) pairs.
    """
    groups = list(groups)
    role_id = role.pk if role is not None else None
    group_ids = [g.pk for g in groups]
    if source not in IDP_SOURCES:
        proposal = Proposal(user_roles={user.pk: role_id}, user_groups={user.pk: set(group_ids)})
        sod.check(user.owner, proposal, actor=actor, actor_label=actor_label)
        return role, groups, []
    kept_role, kept_ids, found = sod.withhold(user.owner, user.pk, role_id, group_ids)
    withheld = []
    names = {g.pk: g.name for g in groups}
    for part, rule in found:
        if part == "role":
            withheld.append((f"role {role}", rule))
        else:
            withheld.append((f"group {names.get(int(part.split(':')[1]), part)}", rule))
    if kept_role is sod.UNCHANGED:
        role = User.objects.select_related("role").get(pk=user.pk).role
    return role, [g for g in groups if g.pk in set(kept_ids)], withheld


def _record_withheld(user: User, withheld: list, *, actor_label: str, source, method: str) -> None:
    if not withheld:
        return
    audit.record(
        AuditAction.SOD_WITHHELD,
        actor_label=actor_label or str(source),
        target=user,
        method=method,
        details="; ".join(f"{part} left out: it would break “{rule}”" for part, rule in withheld),
        context={"withheld": [[part, rule] for part, rule in withheld], "source": str(source)},
    )


def set_user_access(
    user: User,
    *,
    actor: User | None,
    reason: str,
    source: AccessSource,
    role: Any = _KEEP,
    extra_groups: Any = _KEEP,
    details: str = "",
    actor_label: str = "",
    method: str = "",
    context: Mapping[str, Any] | None = None,
) -> dict[str, list]:
    """Set a user's role (None removes it) and/or extra role groups; return what changed.

    The same rules as every change of the record: the actor hands out only what they hold, a
    field the identity provider owns is refused from other doors, the last administrator stays.
    """
    data: dict[str, Any] = {}
    if role is not _KEEP:
        data["role"] = role
    if extra_groups is not _KEEP:
        data["extra_role_groups"] = list(extra_groups)
    if not data:
        raise ValueError("Name the role, the extra groups, or both.")
    return update_user(
        user,
        actor=actor,
        data=data,
        reason=reason,
        source=source,
        details=details,
        actor_label=actor_label,
        method=method,
        context=context,
    )


# Which fields an identity provider owns is known to the provider's app (SAML, SCIM), not here:
# each registers a function when it is ready, so that accounts never imports them.
_idp_managed_field_sources: list[Callable[[User], frozenset[str]]] = []


def register_idp_managed_fields(source: Callable[[User], frozenset[str]]) -> None:
    """Register a function returning the fields of a user that an identity provider owns."""
    if source not in _idp_managed_field_sources:
        _idp_managed_field_sources.append(source)


def idp_managed_fields(user: User) -> frozenset[str]:
    """Return the fields of `user` that its identity provider sets at every sign-in."""
    if user.pk is None or not user.is_sso_managed:
        return frozenset()
    fields: frozenset[str] = frozenset()
    for source in _idp_managed_field_sources:
        fields |= source(user)
    return fields


def _check_idp_managed(user: User, changes: Mapping[str, Any]) -> None:
    """Refuse changing a field that the user's identity provider owns (it would be undone)."""
    owned = sorted(set(changes) & idp_managed_fields(user))
    if owned:
        raise ValidationError(
            {
                name: ValidationError(
                    "Set by the identity provider at every sign-in; change it there.",
                    code="idp_managed",
                )
                for name in owned
            }
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


def void_password_links(user: User, now: datetime.datetime) -> None:
    """Void the user's usable set-password links (the password is no longer theirs to set)."""
    PasswordSetToken.objects.usable(now).filter(user=user).update(voided_at=now)


# ---------------------------------------------------------------------------------------------
# The Login flag and deletion


def _set_login_flag(
    user: User,
    *,
    actor: User | None,
    allow: bool,
    reason: str,
    source: AccessSource,
    details: str,
    context: Mapping[str, Any] | None,
    actor_label: str = "",
    method: str = "",
) -> None:
    _check_actor(actor, actor_label)
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
    ended = 0
    if not allow:
        # Every live session ends now, listed as ended; reactivation never revives one (the
        # session epoch moved), so the person signs in again.
        ended = end_tracked_sessions(user, reason="Deactivated")
    user.refresh_from_db(fields=["allow_login", "row_version", "updated_at", "session_epoch"])
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
        context=_context(
            context,
            source,
            row_version=user.row_version,
            **({"sessions_ended": ended} if not allow else {}),
        ),
        method=method,
    )


def deactivate_user(
    user: User,
    *,
    actor: User | None,
    reason: str,
    source: AccessSource,
    details: str = "",
    actor_label: str = "",
    method: str = "",
) -> None:
    """Remove the Login flag: sign-in is refused at once and live sessions end at their next
    request (the session's user is no longer active). History and settings are kept."""
    with transaction.atomic():
        _set_login_flag(
            user,
            actor=actor,
            allow=False,
            reason=reason,
            source=source,
            details=details,
            context=None,
            actor_label=actor_label,
            method=method,
        )


def reactivate_user(
    user: User,
    *,
    actor: User | None,
    reason: str,
    source: AccessSource,
    details: str = "",
    actor_label: str = "",
    method: str = "",
) -> None:
    """Give the Login flag back to a deactivated interactive user."""
    with transaction.atomic():
        _set_login_flag(
            user,
            actor=actor,
            allow=True,
            reason=reason,
            source=source,
            details=details,
            context=None,
            actor_label=actor_label,
            method=method,
        )


def bulk_deactivate(
    users: Iterable[User],
    *,
    actor: User,
    reason: str,
    source: AccessSource = AccessSource.SCREEN,
    details: str = "",
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
                source=source,
                details=details,
                context={"bulk": True, "count": len(users)},
            )
    return users


def has_history(user: User) -> bool:
    """Say whether any audit event concerns or was made by this user, beyond its creation."""
    concerned = AuditEvent.objects.filter(Q(subject_user_id=user.pk) | Q(actor_id=user.pk))
    creation = Q(action=AuditAction.USER_CREATED, subject_user_id=user.pk) & ~Q(actor_id=user.pk)
    return concerned.exclude(creation).exists()


def delete_user(
    user: User,
    *,
    actor: User | None,
    reason: str,
    source: AccessSource,
    actor_label: str = "",
    method: str = "",
) -> None:
    """Delete a user that has no history (created by mistake); anyone else is deactivated."""
    _check_actor(actor, actor_label)
    with transaction.atomic():
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
            reason=reason,
            method=method,
            context=_context(None, source),
        )
        try:
            with transaction.atomic():
                User.objects.filter(pk=user.pk).delete()
        except models.ProtectedError as exc:
            raise ValidationError(
                f"{user.label} is still referenced by other records, so the record is kept. "
                "Deactivate the user instead."
            ) from exc
