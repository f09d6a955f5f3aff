"""Provisioning over SCIM: create, change, deactivate and remove users and groups.

The identity provider acts through its token: every change is audited with the token's name as
the actor ("SCIM: Okta"), method "scim". People are created, changed, deactivated and deleted
through the same writers as the screens (`accounts.users`, source SCIM). Group membership feeds
the SAML group mappings of the token's identity provider (keyed by the group's display name),
exactly as an assertion's groups would.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

import audit
from accounts import users as accounts
from accounts.choices import AccessSource, AuthSource, UserKind
from audit.choices import AuditAction
from audit.services import diff
from sso.models import SsoIdentity
from sso.services import mapped_access_for_groups

from .models import ScimGroup, ScimToken, ScimUserLink

METHOD = "scim"
# The provider's groups are its data: their changes file under "Identity provider changed".
GROUP_CHANGED = AuditAction.SSO_PROVIDER_CHANGED
PROFILE_FIELDS = ("username", "email", "first_name", "last_name", "display_name")


class ScimError(Exception):
    """A refusal in the SCIM error format: HTTP status, optional scimType, detail."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.scim_type = scim_type


def not_found() -> ScimError:
    return ScimError(404, "Resource not found.")


@dataclass
class UserValues:
    """What the identity provider says of a person, in the portal's terms."""

    username: str
    email: str
    first_name: str = ""
    last_name: str = ""
    display_name: str = ""
    external_id: str = ""
    active: bool | None = None

    def profile(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in PROFILE_FIELDS}


# What the identity provider sets over SCIM (the screens show these read-only).
PROVISIONED_FIELDS = frozenset(
    {"username", "email", "first_name", "last_name", "display_name", "password"}
)


def idp_managed_fields(user) -> frozenset[str]:
    """Return the fields of `user` that the identity provider sets over SCIM, if it does."""
    if ScimUserLink.objects.filter(user_id=user.pk, removed_at__isnull=True).exists():
        return PROVISIONED_FIELDS
    return frozenset()


def visible_users(owner):
    """Return the owner's users that SCIM sees: interactive ones not removed over SCIM."""
    User = get_user_model()
    return User.objects.filter(owner=owner, kind=UserKind.INTERACTIVE).exclude(
        scim_link__removed_at__isnull=False
    )


def _check_version(current: int, expected: int | None) -> None:
    if expected is not None and current != expected:
        raise ScimError(412, "The resource changed since it was read (ETag mismatch).")


def _check_unique(owner, values: UserValues, *, exclude_pk=None) -> None:
    User = get_user_model()
    others = User.objects.exclude(pk=exclude_pk) if exclude_pk else User.objects.all()
    if others.filter(username__ci=values.username).exists():
        raise ScimError(409, "userName is already taken.", "uniqueness")
    if others.filter(email__ci=values.email).exists():
        raise ScimError(409, "The email address is already taken.", "uniqueness")
    if values.external_id:
        clash = ScimUserLink.objects.filter(owner=owner, external_id=values.external_id)
        if exclude_pk:
            clash = clash.exclude(user_id=exclude_pk)
        if clash.exists():
            raise ScimError(409, "externalId is already taken.", "uniqueness")


def _link(token: ScimToken, user, values: UserValues) -> None:
    ScimUserLink.objects.update_or_create(
        user=user,
        defaults={"owner": token.owner, "external_id": values.external_id, "removed_at": None},
    )
    if token.provider_id:
        identity = SsoIdentity.objects.filter(provider_id=token.provider_id, user=user).first()
        taken = SsoIdentity.objects.filter(
            provider_id=token.provider_id, name_id=values.username
        ).exclude(user=user)
        if taken.exists():
            return
        if identity is None:
            SsoIdentity.objects.create(
                provider_id=token.provider_id, user=user, name_id=values.username
            )
        elif identity.name_id != values.username:
            SsoIdentity.objects.filter(pk=identity.pk).update(name_id=values.username)


def _scim_error(exc: ValidationError) -> ScimError:
    """Say a refusal of the account writers in SCIM's terms (a taken name is a 409)."""
    codes = {
        error.code
        for errors in getattr(exc, "error_dict", {"": exc.error_list}).values()
        for error in errors
    }
    if "taken" in codes:
        return ScimError(409, "userName, email or externalId is already taken.", "uniqueness")
    return ScimError(400, " ".join(exc.messages), "invalidValue")


def _writes(token: ScimToken) -> dict:
    """Return who acts and through which door, as the account writers take it."""
    return {
        "actor": None,
        "actor_label": token.actor_label,
        "source": AccessSource.SCIM,
        "method": METHOD,
        "reason": "",
    }


def create_user(token: ScimToken, values: UserValues):
    """Create a person the identity provider manages (auth source SAML, no usable password).

    Refuse a userName, email or externalId already taken (409 uniqueness); link the person to
    the token's identity provider for single sign-on and give the mapped role.
    """
    with transaction.atomic():
        _check_unique(token.owner, values)
        data = {
            **values.profile(),
            "kind": UserKind.INTERACTIVE,
            "auth_source": AuthSource.SAML,
            "allow_login": values.active is not False,
        }
        try:
            with transaction.atomic():
                user = accounts.create_user(
                    data=data,
                    owner=token.owner,
                    details=f"Provisioned by {token.name} over SCIM.",
                    context={"external_id": values.external_id},
                    **_writes(token),
                )
        except ValidationError as exc:
            raise _scim_error(exc) from exc
        _link(token, user, values)
        _apply_mapping(token, [user])
    user.refresh_from_db()
    return user


def replace_user(token: ScimToken, user, values: UserValues, *, expected_version=None):
    """Set a person's profile and active state as the identity provider says (PUT and PATCH).

    The change wins only at `expected_version` (If-Match) when given. `active` false goes
    through the same deactivation as the screens: sign-in refused, sessions end at their next
    request, API tokens answer 401.
    """
    User = get_user_model()
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        _check_version(current.row_version, expected_version)
        _check_unique(token.owner, values, exclude_pk=current.pk)
        try:
            with transaction.atomic():
                accounts.update_user(
                    current,
                    data=values.profile(),
                    details=f"Changed by {token.name} over SCIM.",
                    **_writes(token),
                )
        except ValidationError as exc:
            raise _scim_error(exc) from exc
        current.refresh_from_db()
        _link(token, current, values)
        _set_active(token, current, values.active)
    user.refresh_from_db()
    return user


def _set_active(token: ScimToken, user, active: bool | None) -> None:
    if active is None or active == user.allow_login:
        return
    service = accounts.reactivate_user if active else accounts.deactivate_user
    try:
        service(
            user,
            details=f"{'Reactivated' if active else 'Deactivated'} by {token.name} over SCIM.",
            **_writes(token),
        )
    except ValidationError as exc:
        raise ScimError(400, " ".join(exc.messages), "invalidValue") from exc


def delete_user(token: ScimToken, user, *, expected_version=None) -> None:
    """Remove a person: delete the record when it has no history, else deactivate it and hide
    it from SCIM (the audit log keeps its history)."""
    User = get_user_model()
    with transaction.atomic():
        current = User.objects.select_for_update().get(pk=user.pk)
        _check_version(current.row_version, expected_version)
        if not accounts.has_history(current):
            try:
                accounts.delete_user(current, **{**_writes(token), "reason": "Deleted over SCIM."})
            except ValidationError:
                pass
            else:
                return
        _set_active(token, current, False)
        ScimUserLink.objects.update_or_create(
            user=current, defaults={"owner": token.owner, "removed_at": timezone.now()}
        )
        for group in ScimGroup.objects.filter(owner=token.owner, members=current):
            group.members.remove(current)
        _apply_mapping(token, [current])


# ---------------------------------------------------------------------------------------------
# Groups


def _group_state(group: ScimGroup) -> dict:
    return {
        "display_name": group.display_name,
        "external_id": group.external_id,
        "members": sorted(u.username for u in group.members.all()),
    }


def _members(token: ScimToken, member_ids: Iterable[str]) -> list:
    ids = []
    for raw in member_ids:
        text = str(raw or "").strip()
        if not text.isdigit():
            raise ScimError(400, f"Unknown member {text[:60]!r}.", "invalidValue")
        ids.append(int(text))
    users = list(visible_users(token.owner).filter(pk__in=ids))
    if len({u.pk for u in users}) != len(set(ids)):
        raise ScimError(400, "A member is not a user of this organisation.", "invalidValue")
    return users


def _check_group_name(token: ScimToken, name: str, *, exclude_pk=None) -> str:
    name = (name or "").strip()
    if not name:
        raise ScimError(400, "displayName is required.", "invalidValue")
    if len(name) > 300:
        raise ScimError(400, "displayName is too long.", "invalidValue")
    clash = ScimGroup.objects.filter(owner=token.owner, display_name__iexact=name)
    if exclude_pk:
        clash = clash.exclude(pk=exclude_pk)
    if clash.exists():
        raise ScimError(409, "displayName is already taken.", "uniqueness")
    return name


def save_group(
    token: ScimToken,
    group: ScimGroup | None,
    *,
    display_name: str,
    external_id: str = "",
    member_ids: Iterable[str] = (),
    expected_version=None,
) -> ScimGroup:
    """Create or replace a group with its members; re-apply the role mapping to everyone whose
    membership (or whose group's name) changed, bump their permissions, audit it."""
    with transaction.atomic():
        if group is not None:
            group = ScimGroup.objects.select_for_update().get(pk=group.pk)
            _check_version(group.row_version, expected_version)
        name = _check_group_name(token, display_name, exclude_pk=group.pk if group else None)
        members = set(_members(token, member_ids))
        before = _group_state(group) if group is not None else {}
        old_members = set(group.members.all()) if group is not None else set()
        renamed = group is not None and group.display_name != name
        if group is None:
            group = ScimGroup(owner=token.owner)
        else:
            group.row_version += 1
        group.display_name = name
        group.external_id = (external_id or "")[:300]
        group.updated_at = timezone.now()
        try:
            with transaction.atomic():
                group.save()
        except IntegrityError as exc:
            raise ScimError(409, "displayName is already taken.", "uniqueness") from exc
        group.members.set(members)
        changes = diff(before, _group_state(group))
        if changes:
            audit.record(
                GROUP_CHANGED,
                actor=None,
                actor_label=token.actor_label,
                target=group,
                owner=token.owner,
                method=METHOD,
                changes=changes,
                details=f"{'Created' if not before else 'Changed'} by {token.name} over SCIM.",
            )
        affected = (members | old_members) if renamed or not before else members ^ old_members
        _apply_mapping(token, affected)
    return group


def delete_group(token: ScimToken, group: ScimGroup, *, expected_version=None) -> None:
    """Delete a group; its former members lose what its mapping gave them."""
    with transaction.atomic():
        group = ScimGroup.objects.select_for_update().get(pk=group.pk)
        _check_version(group.row_version, expected_version)
        members = list(group.members.all())
        audit.record(
            GROUP_CHANGED,
            actor=None,
            actor_label=token.actor_label,
            target=group,
            owner=token.owner,
            method=METHOD,
            changes=diff(_group_state(group), {}),
            details=f"Deleted by {token.name} over SCIM.",
        )
        group.delete()
        _apply_mapping(token, members)


def _apply_mapping(token: ScimToken, users: Iterable) -> None:
    """Set role and extra role groups of SSO-managed users from their SCIM groups' mappings.

    Only people the identity provider manages (auth source SAML) are touched, and only when
    the token names an identity provider whose mappings apply.
    """
    provider = token.provider
    if provider is None:
        return
    User = get_user_model()
    for user in users:
        user = User.objects.select_related("role").get(pk=user.pk)
        if user.auth_source != AuthSource.SAML:
            continue
        present = set(
            ScimGroup.objects.filter(owner=token.owner, members=user).values_list(
                "display_name", flat=True
            )
        )
        role, groups = mapped_access_for_groups(provider, present)
        accounts.set_user_access(
            user,
            role=role,
            extra_groups=groups,
            details=f"Role mapping re-applied from the SCIM groups of {token.name}.",
            context={"groups": sorted(present)},
            **_writes(token),
        )
