"""Single sign-on: sign a verified person in (JIT, profile, group mapping), and manage the
owner's identity providers.

The owner is always the provider's owner: an assertion never picks it, and users are found by
(provider, NameID), never by email. Verification of the message itself is in `responses`.
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify

import audit
from accounts import users
from accounts.choices import AccessSource, AuthSource, UserKind
from accounts.services import record_sign_in
from audit.choices import AuditAction
from audit.services import diff
from roles import guards

from . import config
from .metadata import parse_idp_metadata
from .models import (
    ATTRIBUTE_FIELDS,
    ENTRA_GROUPS_OVERAGE,
    SamlAssertionId,
    SamlGroupMapping,
    SamlIdentityProvider,
    SsoIdentity,
)
from .responses import Assertion, Refusal, SsoRefused, verify_response

SIGNED_IN_PROVIDER = "sso_provider_id"


# ---------------------------------------------------------------------------------------------
# Consuming a response
# ---------------------------------------------------------------------------------------------


def sign_in_with_response(request, saml_response: str, relay_state: str = "", *, now=None):
    """Verify a posted SAML response and sign its person in; return the user.

    Raise SsoRefused (after recording SSO_REFUSED or SIGN_IN_FAILED with the precise reason)
    when anything is wrong: the message, the provider, the replay store, or the person.
    """
    try:
        provider, assertion = verify_response(request, saml_response, relay_state, now=now)
        consume_assertion_id(provider, assertion, now=now)
        user = provision(provider, assertion, now=now)
    except SsoRefused as refusal:
        record_refusal(refusal)
        raise
    with transaction.atomic():
        record_sign_in(request, user, method="saml")
        request.session[SIGNED_IN_PROVIDER] = provider.pk
    return user


def consume_assertion_id(provider, assertion: Assertion, *, now=None) -> None:
    """Store the assertion id until it expires; refuse it when it was already used (a replay).

    The unique constraint decides between concurrent requests on any number of processes.
    """
    now = now or timezone.now()
    try:
        with transaction.atomic():
            SamlAssertionId.objects.filter(expires_at__lt=now).delete()
            SamlAssertionId.objects.create(
                assertion_id=assertion.assertion_id[:256],
                provider=provider,
                expires_at=assertion.expires_at,
            )
    except IntegrityError as exc:
        raise SsoRefused(
            Refusal.REPLAYED, assertion.assertion_id, provider=provider, name_id=assertion.name_id
        ) from exc


# ---------------------------------------------------------------------------------------------
# The person
# ---------------------------------------------------------------------------------------------


def provision(provider, assertion: Assertion, *, now=None):
    """Find (or create, with JIT) the provider's user for the NameID and bring it up to date.

    Set the profile fields the provider sends and the role and extra role groups exactly from
    the mapped groups present; bump the permissions version when access can move; audit it.
    Refuse a user without the Login flag, an API user, or an unknown person when JIT is off.
    """
    now = now or timezone.now()
    User = get_user_model()
    with transaction.atomic():
        identity = (
            SsoIdentity.objects.select_for_update()
            .select_related("user", "user__owner")
            .filter(provider=provider, name_id=assertion.name_id)
            .first()
        )
        if identity is not None and identity.user.owner_id != provider.owner_id:
            raise SsoRefused(Refusal.UNKNOWN_USER, "identity of another owner", provider=provider)
        user = identity.user if identity else None
        if user is not None:
            user = User.objects.select_for_update().get(pk=user.pk)
            if not user.allow_login:
                raise _about(Refusal.LOGIN_DISABLED, provider, assertion, user)
            if user.kind != UserKind.INTERACTIVE:
                raise _about(Refusal.NOT_INTERACTIVE, provider, assertion, user)
        elif not provider.jit_provisioning:
            raise _about(Refusal.UNKNOWN_USER, provider, assertion, None)

        profile = _profile(provider, assertion)
        role, groups = _mapped_access(provider, assertion)
        if user is None:
            try:
                with transaction.atomic():
                    user = _create_user(provider, assertion, profile, role, groups, now=now)
                    SsoIdentity.objects.create(
                        provider=provider, user=user, name_id=assertion.name_id, last_used_at=now
                    )
            except IntegrityError as exc:
                # Two first sign-ins of one person at once: the other one created the user.
                raise _about(Refusal.USERNAME_TAKEN, provider, assertion, None) from exc
            return user
        _update_user(provider, assertion, user, profile, role, groups, now=now)
        SsoIdentity.objects.filter(pk=identity.pk).update(last_used_at=now)
        return user


def _about(reason, provider, assertion, user) -> SsoRefused:
    return SsoRefused(reason, provider=provider, user=user, name_id=assertion.name_id)


def _profile(provider, assertion: Assertion) -> dict[str, str]:
    values = {
        "username": assertion.first(provider.username_attribute)
        if provider.username_attribute
        else assertion.name_id,
        "email": assertion.first(provider.email_attribute) if provider.email_attribute else "",
        "first_name": assertion.first(provider.first_name_attribute)
        if provider.first_name_attribute
        else "",
        "last_name": assertion.first(provider.last_name_attribute)
        if provider.last_name_attribute
        else "",
    }
    if not values["email"] and "@" in assertion.name_id:
        values["email"] = assertion.name_id
    values["email"] = get_user_model().objects.normalize_email(values["email"])[:254]
    values["username"] = values["username"][:150]
    values["first_name"] = values["first_name"][:150]
    values["last_name"] = values["last_name"][:150]
    return values


def _mapped_access(provider, assertion: Assertion):
    """Return (role, role groups) from the mappings of the groups in the assertion.

    Refuse an Entra ID "groups overage" (a link in place of the groups): mapping from it
    would silently take every mapped role away.
    """
    if ENTRA_GROUPS_OVERAGE in assertion.attributes and not assertion.all(
        provider.groups_attribute
    ):
        raise SsoRefused(Refusal.GROUPS_OVERAGE, provider=provider, name_id=assertion.name_id)
    present = set(assertion.all(provider.groups_attribute)) if provider.groups_attribute else set()
    return mapped_access_for_groups(provider, present)


def mapped_access_for_groups(provider, present):
    """Return (role, role groups) that the provider's group mappings give for these IdP groups.

    The first mapping (in list order) with a role gives the role, else the provider's default
    role; the role groups are those of every matching mapping. SCIM group membership uses this
    too, keyed by the group's display name.
    """
    mappings = list(
        SamlGroupMapping.objects.filter(provider=provider, idp_group__in=present)
        .select_related("role")
        .prefetch_related("role_groups")
        .order_by("id")
    )
    role = next((m.role for m in mappings if m.role is not None), None) or provider.default_role
    groups = {g for m in mappings for g in m.role_groups.all()}
    return role, groups


def _writes(provider, assertion: Assertion, details: str) -> dict:
    """Return who acts and through which door, as the account writers take them."""
    return {
        "actor": None,
        "actor_label": f"SSO: {provider.name}",
        "source": AccessSource.SAML,
        "method": "saml",
        "reason": "",
        "details": details,
        "context": {"provider": provider.pk, "name_id": assertion.name_id},
    }


def _create_user(provider, assertion, profile, role, groups, *, now):
    User = get_user_model()
    if not profile["username"]:
        raise _about(Refusal.MISSING_ATTRIBUTE, provider, assertion, None)
    if not profile["email"]:
        raise SsoRefused(
            Refusal.MISSING_ATTRIBUTE,
            f"email ({provider.email_attribute or 'NameID'})",
            provider=provider,
            name_id=assertion.name_id,
        )
    # Logins and emails are unique across owners: never take over another user's.
    if User.objects.filter(username__ci=profile["username"]).exists():
        raise _about(Refusal.USERNAME_TAKEN, provider, assertion, None)
    if User.objects.filter(email__ci=profile["email"]).exists():
        raise _about(Refusal.EMAIL_TAKEN, provider, assertion, None)
    data = {
        **profile,
        "kind": UserKind.INTERACTIVE,
        "auth_source": AuthSource.SAML,
        "allow_login": True,
        "role": role,
        "extra_role_groups": list(groups),
    }
    try:
        return users.create_user(
            data=data,
            owner=provider.owner,
            **_writes(provider, assertion, f"Created at first sign-in through {provider.name}."),
        )
    except ValidationError as exc:
        # Another first sign-in took the login or email between the check and the save.
        raise _about(Refusal.USERNAME_TAKEN, provider, assertion, None) from exc


def _update_user(provider, assertion, user, profile, role, groups, *, now) -> None:
    User = get_user_model()
    data = {name: profile[name] for name in ("first_name", "last_name") if profile[name]}
    email = profile["email"]
    if email and email.lower() != user.email.lower():
        taken = User.objects.filter(email__ci=email).exclude(pk=user.pk).exists()
        if not taken:
            data["email"] = email
    data |= {"role": role, "extra_role_groups": list(groups)}
    users.update_user(
        user,
        data=data,
        **_writes(provider, assertion, f"Updated from the assertion of {provider.name}."),
    )


def record_refusal(refusal: SsoRefused) -> None:
    """Record a refused SSO sign-in with its exact reason (never shown to the person).

    A refusal about the person (no Login flag, unknown and no JIT, login taken) is a failed
    sign-in; one about the message (signature, replay, audience, lifetime) an SSO refusal.
    """
    provider = refusal.provider
    owner = provider.owner if provider is not None else None
    context = {
        "reason": refusal.reason,
        "detail": refusal.detail[:500],
        "provider": provider.pk if provider is not None else None,
        "name_id": refusal.name_id[:300],
    }
    with transaction.atomic():
        if refusal.reason in Refusal.ABOUT_THE_USER:
            audit.record(
                AuditAction.SIGN_IN_FAILED,
                actor=None,
                actor_label=(refusal.name_id or "")[:150],
                target=refusal.user,
                owner=owner,
                subject_user=refusal.user,
                reason=Refusal.LABELS[refusal.reason],
                method="saml",
                context={**context, "login": refusal.name_id[:150]},
            )
            return
        audit.record(
            AuditAction.SSO_REFUSED,
            actor=None,
            actor_label=(refusal.name_id or "unknown")[:150],
            target=provider,
            owner=owner,
            reason=Refusal.LABELS.get(refusal.reason, refusal.reason),
            method="saml",
            context=context,
        )


# ---------------------------------------------------------------------------------------------
# Managing providers (the screens call these)
# ---------------------------------------------------------------------------------------------

PROVIDER_EDITABLE = (
    "name",
    "preset",
    *ATTRIBUTE_FIELDS,
    "jit_provisioning",
    "default_role",
    "allow_idp_initiated",
    "enabled",
)
PROVIDER_AUDITED = (
    "name",
    "entity_id",
    "preset",
    *ATTRIBUTE_FIELDS,
    "jit_provisioning",
    "default_role",
    "allow_idp_initiated",
    "enabled",
)


def _provider_state(provider) -> dict:
    state = {name: getattr(provider, name) for name in PROVIDER_AUDITED}
    state["default_role"] = provider.default_role.name if provider.default_role_id else None
    state["metadata_sha256"] = _sha256(provider.metadata_xml)
    return state


def _sha256(text: str) -> str:
    import hashlib

    return hashlib.sha256((text or "").encode("utf-8")).hexdigest()[:16]


def _check_roles(actor, *, roles=(), groups=()) -> None:
    """Refuse mapping people to roles or groups of another owner or above the actor's own."""
    all_groups = list(groups)
    for role in roles:
        if role is None:
            continue
        if role.owner_id != actor.owner_id:
            raise ValidationError({"role": "Choose a role of your organisation."})
        all_groups.extend(role.role_groups.all())
    for group in all_groups:
        if group.owner_id != actor.owner_id:
            raise ValidationError({"role_groups": "Choose role groups of your organisation."})
    guards.check_can_grant_groups(actor, all_groups)


def save_provider(
    actor, provider: SamlIdentityProvider | None, data: dict, *, reason: str, row_version=None
):
    """Create or update an identity provider of the actor's owner from validated form data.

    Validate the metadata (safe parse, one IdP, a signing certificate), refuse a default role
    above what the actor holds, detect a concurrent edit, and audit before → after.
    """
    metadata = parse_idp_metadata(data["metadata_xml"])
    _check_roles(actor, roles=[data.get("default_role")])
    with transaction.atomic():
        if provider is None:
            provider = SamlIdentityProvider(owner=actor.owner)
            before = {}
            action_details = "Identity provider added."
        else:
            provider = SamlIdentityProvider.objects.select_for_update().get(pk=provider.pk)
            if row_version is not None and provider.row_version != int(row_version):
                raise ValidationError(
                    "Someone else changed this identity provider meanwhile. Reload the page and "
                    "make your change again."
                )
            before = _provider_state(provider)
            action_details = "Identity provider changed."
        for name in PROVIDER_EDITABLE:
            if name in data:
                setattr(provider, name, data[name])
        provider.metadata_xml = data["metadata_xml"].strip()
        provider.entity_id = metadata.entity_id
        if not provider.slug:
            provider.slug = _unique_slug(actor.owner, provider.name)
        clash = SamlIdentityProvider.objects.filter(
            owner=actor.owner, name__iexact=provider.name
        ).exclude(pk=provider.pk)
        if clash.exists():
            raise ValidationError({"name": "Another identity provider already has this name."})
        _load_check(provider)
        if before:
            provider.row_version += 1
        provider.updated_at = timezone.now()
        provider.save()
        audit.record(
            AuditAction.SSO_PROVIDER_CHANGED,
            actor=actor,
            target=provider,
            changes=diff(before, _provider_state(provider)),
            details=action_details,
            reason=reason,
        )
    return provider


def _load_check(provider) -> None:
    """Refuse metadata that pysaml2 itself cannot load."""
    try:
        config.sp_config(provider)
    except Exception as exc:
        raise ValidationError({"metadata_xml": f"The metadata cannot be used: {exc}"}) from exc


def _unique_slug(owner, name: str) -> str:
    base = slugify(name)[:50] or "idp"
    slug, n = base, 1
    while SamlIdentityProvider.objects.filter(owner=owner, slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def delete_provider(actor, provider, *, reason: str) -> None:
    """Delete an identity provider; its people keep their accounts but can no longer use SSO."""
    with transaction.atomic():
        provider = SamlIdentityProvider.objects.select_for_update().get(pk=provider.pk)
        before = _provider_state(provider)
        people = provider.identities.count()
        audit.record(
            AuditAction.SSO_PROVIDER_CHANGED,
            actor=actor,
            target=provider,
            changes=diff(before, {}),
            details=f"Identity provider deleted ({people} linked identities removed).",
            reason=reason,
        )
        provider.delete()


def save_group_mapping(
    actor, provider, mapping: SamlGroupMapping | None, data: dict, *, reason: str
):
    """Create or update a group mapping; refuse roles or groups above what the actor holds."""
    role, groups = data.get("role"), list(data.get("role_groups") or [])
    if role is None and not groups:
        raise ValidationError("Choose a role, role groups, or both.")
    _check_roles(actor, roles=[role], groups=groups)
    with transaction.atomic():
        provider = SamlIdentityProvider.objects.select_for_update().get(pk=provider.pk)
        idp_group = data["idp_group"].strip()
        clash = SamlGroupMapping.objects.filter(provider=provider, idp_group=idp_group)
        if mapping is not None:
            clash = clash.exclude(pk=mapping.pk)
        if clash.exists():
            raise ValidationError({"idp_group": "This group is already mapped."})
        before = _mapping_state(mapping) if mapping is not None else {}
        mapping = mapping or SamlGroupMapping(provider=provider)
        mapping.idp_group = idp_group
        mapping.role = role
        mapping.save()
        mapping.role_groups.set(groups)
        _bump_provider(provider)
        audit.record(
            AuditAction.SSO_PROVIDER_CHANGED,
            actor=actor,
            target=provider,
            changes={
                f"mapping {idp_group}": [before or None, _mapping_state(mapping)],
            },
            details="Group mapping saved; it applies at each person's next sign-in.",
            reason=reason,
        )
    return mapping


def delete_group_mapping(actor, provider, mapping, *, reason: str) -> None:
    """Delete a group mapping; people lose what it gave at their next sign-in."""
    with transaction.atomic():
        provider = SamlIdentityProvider.objects.select_for_update().get(pk=provider.pk)
        before = _mapping_state(mapping)
        mapping.delete()
        _bump_provider(provider)
        audit.record(
            AuditAction.SSO_PROVIDER_CHANGED,
            actor=actor,
            target=provider,
            changes={f"mapping {before['idp_group']}": [before, None]},
            details="Group mapping deleted; it applies at each person's next sign-in.",
            reason=reason,
        )


def _mapping_state(mapping) -> dict:
    return {
        "idp_group": mapping.idp_group,
        "role": mapping.role.name if mapping.role_id else None,
        "role_groups": sorted(mapping.role_groups.values_list("name", flat=True)),
    }


def _bump_provider(provider) -> None:
    SamlIdentityProvider.objects.filter(pk=provider.pk).update(
        row_version=provider.row_version + 1, updated_at=timezone.now()
    )


def providers_for_sign_in():
    """Return the enabled identity providers offered on the sign-in page."""
    return SamlIdentityProvider.objects.filter(enabled=True).only("pk", "name")


def idp_managed_fields(user) -> frozenset[str]:
    """Return the fields of `user` that an identity provider sets at every sign-in.

    The user screens show these read-only (and say so): a change made here would be undone
    at the person's next sign-in. Empty for users without an SSO identity.
    """
    fields: set[str] = set()
    providers = SamlIdentityProvider.objects.filter(identities__user=user).distinct()
    for provider in providers:
        fields.update({"username", "role", "extra_role_groups", "password"})
        for name in ("email", "first_name", "last_name"):
            if getattr(provider, f"{name}_attribute"):
                fields.add(name)
    return frozenset(fields)
