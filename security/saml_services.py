"""Single sign-on: consume an identity provider's response, and manage the providers.

A response is trusted only after pysaml2 has checked it against the keys of one provider's
metadata (signature, audience, destination, lifetime, InResponseTo). The provider is the one the
person chose on the sign-in page (kept in the SAML session with the request id), or, for sign-in
started at the IdP, the single enabled provider with that entity id that allows it. The owner is
always the provider's owner: an assertion never picks it, and users are found by
(provider, NameID), never by email.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import logging
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree as SafeET
import saml2
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.text import slugify
from saml2 import saml as saml_ns
from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
from saml2.sigver import MissingKey, SignatureError
from saml2.validate import ResponseLifetimeExceed, ToEarly

import audit
from accounts.choices import AuthSource, UserKind
from accounts.services import record_sign_in
from audit.choices import AuditAction
from audit.services import diff
from roles import guards, versions

from . import saml_config
from .saml_metadata import parse_idp_metadata
from .saml_models import (
    ATTRIBUTE_FIELDS,
    SamlAssertionId,
    SamlGroupMapping,
    SamlIdentityProvider,
    SsoIdentity,
)

logger = logging.getLogger(__name__)

PENDING_REQUESTS = "_saml2_pending_requests"
SIGNED_IN_PROVIDER = "sso_provider_id"
MAX_PENDING = 10
MAX_RESPONSE_BYTES = 512_000
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
DS = "http://www.w3.org/2000/09/xmldsig#"
STRONG_SIGNATURES = {
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512",
    "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1",
}
STRONG_DIGESTS = {
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmldsig-more#sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512",
}
# Kept when an assertion says nothing about its lifetime (it always should).
DEFAULT_REPLAY_WINDOW = datetime.timedelta(hours=1)


class Refusal:
    """Why an SSO sign-in was refused; only the audit log sees these."""

    MALFORMED = "malformed_response"
    UNSAFE_XML = "unsafe_xml"
    UNKNOWN_IDP = "unknown_idp"
    AMBIGUOUS_IDP = "ambiguous_idp"
    DISABLED_IDP = "disabled_idp"
    UNSOLICITED = "unsolicited"
    BAD_SIGNATURE = "bad_signature"
    WEAK_ALGORITHM = "weak_algorithm"
    EXPIRED = "expired"
    WRONG_AUDIENCE = "wrong_audience"
    WRONG_DESTINATION = "wrong_destination"
    IDP_STATUS = "idp_status"
    REPLAYED = "replayed"
    INVALID = "invalid_response"
    NO_NAME_ID = "no_name_id"
    TRANSIENT_NAME_ID = "transient_name_id"
    UNKNOWN_USER = "unknown_user"
    MISSING_ATTRIBUTE = "missing_attribute"
    USERNAME_TAKEN = "username_taken"
    EMAIL_TAKEN = "email_taken"
    LOGIN_DISABLED = "login_disabled"
    NOT_INTERACTIVE = "api_user"

    LABELS = {
        MALFORMED: "The SAML response could not be read",
        UNSAFE_XML: "The SAML response declares a DTD or entities",
        UNKNOWN_IDP: "No enabled identity provider sent this response",
        AMBIGUOUS_IDP: "Several identity providers share this entity id",
        DISABLED_IDP: "The identity provider is disabled",
        UNSOLICITED: "Response not asked for (sign-in started at the IdP is not allowed)",
        BAD_SIGNATURE: "Missing or invalid signature",
        WEAK_ALGORITHM: "Signed with a weak algorithm (SHA-1)",
        EXPIRED: "Assertion expired or not yet valid",
        WRONG_AUDIENCE: "Assertion meant for another service provider (audience)",
        WRONG_DESTINATION: "Response sent to another service provider (destination)",
        IDP_STATUS: "The identity provider reported a failure",
        REPLAYED: "Assertion already used (replay)",
        INVALID: "The SAML response did not pass validation",
        NO_NAME_ID: "The assertion has no NameID",
        TRANSIENT_NAME_ID: "The NameID is transient, so it cannot identify a person",
        UNKNOWN_USER: "No user for this identity and provisioning is off",
        MISSING_ATTRIBUTE: "A required attribute is missing",
        USERNAME_TAKEN: "The login is already used by another user",
        EMAIL_TAKEN: "The email address is already used by another user",
        LOGIN_DISABLED: "User has no Login flag",
        NOT_INTERACTIVE: "API users cannot sign in to the application",
    }
    # Refusals about the person rather than the message: recorded as failed sign-ins.
    ABOUT_THE_USER = {UNKNOWN_USER, USERNAME_TAKEN, EMAIL_TAKEN, LOGIN_DISABLED, NOT_INTERACTIVE}


class SsoRefused(Exception):
    """An SSO sign-in was refused for `reason` (a Refusal code); the person sees nothing of it."""

    def __init__(self, reason: str, detail: str = "", *, provider=None, user=None, name_id=""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
        self.provider = provider
        self.user = user
        self.name_id = name_id


@dataclass
class Assertion:
    """The facts of a verified assertion that the portal uses."""

    assertion_id: str
    name_id: str
    attributes: dict[str, list[str]]
    expires_at: datetime.datetime
    session_index: str = ""
    issuer: str = ""
    relay_state: str = ""

    def first(self, name: str) -> str:
        values = self.attributes.get(name) or []
        return values[0].strip() if values else ""

    def all(self, name: str) -> list[str]:
        return [v.strip() for v in self.attributes.get(name, []) if v and v.strip()]


# ---------------------------------------------------------------------------------------------
# Starting a sign-in
# ---------------------------------------------------------------------------------------------


def remember_request(saml_session, request_id: str, provider, next_path: str) -> None:
    """Keep the AuthnRequest id and the chosen provider in the SAML session for the response."""
    pending = dict(saml_session.get(PENDING_REQUESTS, {}))
    pending[request_id] = {"provider": provider.pk, "next": next_path}
    while len(pending) > MAX_PENDING:
        pending.pop(next(iter(pending)))
    saml_session[PENDING_REQUESTS] = pending


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


def verify_response(request, saml_response: str, relay_state: str = "", *, now=None):
    """Return (provider, Assertion) once pysaml2 has verified the response, else SsoRefused."""
    xml = _decode(saml_response)
    in_response_to, issuer = _peek(xml)
    pending = request.saml_session.get(PENDING_REQUESTS, {})
    solicited = pending.get(in_response_to) if in_response_to else None
    provider = _choose_provider(issuer, solicited)
    _check_algorithms(xml, provider)

    from djangosaml2.cache import IdentityCache
    from djangosaml2.overrides import Saml2Client

    client = Saml2Client(
        saml_config.sp_config(provider), identity_cache=IdentityCache(request.saml_session)
    )
    outstanding = {in_response_to: solicited["next"]} if solicited else {}
    try:
        response = client.parse_authn_request_response(
            saml_response, saml2.BINDING_HTTP_POST, outstanding
        )
    except UnsolicitedResponse as exc:
        raise SsoRefused(Refusal.UNSOLICITED, str(exc), provider=provider) from exc
    except (SignatureError, IncorrectlySigned, MissingKey) as exc:
        raise SsoRefused(Refusal.BAD_SIGNATURE, str(exc), provider=provider) from exc
    except (ResponseLifetimeExceed, ToEarly) as exc:
        raise SsoRefused(Refusal.EXPIRED, str(exc), provider=provider) from exc
    except StatusError as exc:
        raise SsoRefused(Refusal.IDP_STATUS, str(exc), provider=provider) from exc
    except Exception as exc:
        raise SsoRefused(_classify(exc, xml), str(exc), provider=provider) from exc
    if response is None or response.assertion is None:
        raise SsoRefused(_classify(None, xml), "no verified assertion", provider=provider)

    if in_response_to and in_response_to in pending:
        pending = dict(pending)
        pending.pop(in_response_to, None)
        request.saml_session[PENDING_REQUESTS] = pending
    assertion = _facts(response, relay_state, now=now)
    if assertion.issuer and assertion.issuer != provider.entity_id:
        raise SsoRefused(Refusal.UNKNOWN_IDP, f"issuer {assertion.issuer}", provider=provider)
    if not assertion.name_id:
        raise SsoRefused(Refusal.NO_NAME_ID, provider=provider)
    if getattr(response.name_id, "format", None) == saml_ns.NAMEID_FORMAT_TRANSIENT:
        raise SsoRefused(Refusal.TRANSIENT_NAME_ID, provider=provider, name_id=assertion.name_id)
    from djangosaml2.views import _set_subject_id

    _set_subject_id(request.saml_session, response.name_id)
    return provider, assertion


def _decode(saml_response: str) -> bytes:
    if not saml_response or len(saml_response) > MAX_RESPONSE_BYTES:
        raise SsoRefused(Refusal.MALFORMED, "empty or oversized SAMLResponse")
    try:
        return base64.b64decode(saml_response, validate=False)
    except (binascii.Error, ValueError) as exc:
        raise SsoRefused(Refusal.MALFORMED, "not base64") from exc


def _parse(xml: bytes):
    try:
        return SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise SsoRefused(Refusal.UNSAFE_XML, type(exc).__name__) from exc
    except SafeET.ParseError as exc:
        raise SsoRefused(Refusal.MALFORMED, str(exc)) from exc


def _peek(xml: bytes) -> tuple[str, str]:
    """Return (InResponseTo, Issuer) of an unverified response: only to choose the provider."""
    root = _parse(xml)
    if root.tag != f"{{{SAMLP}}}Response":
        raise SsoRefused(Refusal.MALFORMED, f"root element {root.tag}")
    issuer = root.find(f"{{{SAML}}}Issuer")
    if issuer is None:
        issuer = root.find(f"{{{SAML}}}Assertion/{{{SAML}}}Issuer")
    return root.get("InResponseTo", ""), (issuer.text or "").strip() if issuer is not None else ""


def _choose_provider(issuer: str, solicited: dict | None) -> SamlIdentityProvider:
    if solicited:
        provider = (
            SamlIdentityProvider.objects.select_related("owner")
            .filter(pk=solicited["provider"])
            .first()
        )
        if provider is None:
            raise SsoRefused(Refusal.UNKNOWN_IDP, "provider deleted since the request")
        if not provider.enabled:
            raise SsoRefused(Refusal.DISABLED_IDP, provider=provider)
        return provider
    candidates = list(
        SamlIdentityProvider.objects.select_related("owner").filter(entity_id=issuer, enabled=True)
    )
    if not candidates:
        raise SsoRefused(Refusal.UNKNOWN_IDP, f"issuer {issuer[:200]!r}")
    allowing = [p for p in candidates if p.allow_idp_initiated]
    if not allowing:
        raise SsoRefused(Refusal.UNSOLICITED, provider=candidates[0])
    if len(allowing) > 1:
        raise SsoRefused(Refusal.AMBIGUOUS_IDP, f"issuer {issuer[:200]!r}")
    return allowing[0]


def _check_algorithms(xml: bytes, provider) -> None:
    """Refuse signatures made with SHA-1 (pysaml2 would accept them)."""
    root = _parse(xml)
    for method in root.iter(f"{{{DS}}}SignatureMethod"):
        if method.get("Algorithm") not in STRONG_SIGNATURES:
            raise SsoRefused(Refusal.WEAK_ALGORITHM, method.get("Algorithm", ""), provider=provider)
    for method in root.iter(f"{{{DS}}}DigestMethod"):
        if method.get("Algorithm") not in STRONG_DIGESTS:
            raise SsoRefused(Refusal.WEAK_ALGORITHM, method.get("Algorithm", ""), provider=provider)


def logout_request_is_signed(saml_request: str, binding: str, *, sigalg=None, signature=None):
    """Say whether a LogoutRequest carries a strong signature (pysaml2 then verifies it)."""
    if binding == saml2.BINDING_HTTP_REDIRECT:
        return bool(signature) and sigalg in STRONG_SIGNATURES
    try:
        root = _parse(_decode(saml_request))
        _check_algorithms(base64.b64decode(saml_request), None)
    except SsoRefused:
        return False
    return root.find(f"{{{DS}}}Signature") is not None


def _classify(exc: Exception | None, xml: bytes) -> str:
    """Name the reason pysaml2 refused a response whose exception says little."""
    text = str(exc or "")
    if "Audience" in text:
        return Refusal.WRONG_AUDIENCE
    if "Signature" in text or "signature" in text:
        return Refusal.BAD_SIGNATURE
    root = _parse(xml)
    destination = root.get("Destination")
    if destination and destination != saml_config.acs_url():
        return Refusal.WRONG_DESTINATION
    audiences = [a.text for a in root.iter(f"{{{SAML}}}Audience")]
    if audiences and saml_config.sp_entity_id() not in audiences:
        return Refusal.WRONG_AUDIENCE
    return Refusal.INVALID


def _facts(response, relay_state: str, *, now=None) -> Assertion:
    now = now or timezone.now()
    assertion = response.assertion
    attributes: dict[str, list[str]] = {}
    for statement in assertion.attribute_statement:
        for attribute in statement.attribute:
            values = [v.text for v in attribute.attribute_value if v.text is not None]
            for key in {attribute.name, attribute.friendly_name} - {None, ""}:
                attributes.setdefault(key, []).extend(values)
    expiries = [
        sc.subject_confirmation_data.not_on_or_after
        for sc in assertion.subject.subject_confirmation
        if sc.subject_confirmation_data is not None and sc.subject_confirmation_data.not_on_or_after
    ]
    if assertion.conditions is not None and assertion.conditions.not_on_or_after:
        expiries.append(assertion.conditions.not_on_or_after)
    parsed = [_instant(e) for e in expiries]
    parsed = [e for e in parsed if e is not None]
    expires_at = max(parsed) if parsed else now + DEFAULT_REPLAY_WINDOW
    expires_at = max(expires_at, now) + datetime.timedelta(seconds=saml_config.ACCEPTED_TIME_DIFF)
    session_index = ""
    if assertion.authn_statement:
        session_index = assertion.authn_statement[0].session_index or ""
    name_id = response.name_id
    return Assertion(
        assertion_id=assertion.id,
        name_id=(name_id.text or "").strip() if isinstance(name_id, saml_ns.NameID) else "",
        attributes=attributes,
        expires_at=expires_at,
        session_index=session_index,
        issuer=(assertion.issuer.text or "").strip() if assertion.issuer is not None else "",
        relay_state=relay_state,
    )


def _instant(value: str) -> datetime.datetime | None:
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


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
            user = _create_user(provider, assertion, profile, role, groups, now=now)
            SsoIdentity.objects.create(
                provider=provider, user=user, name_id=assertion.name_id, last_used_at=now
            )
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
    """Return (role, role groups) from the mappings of the groups in the assertion."""
    present = set(assertion.all(provider.groups_attribute)) if provider.groups_attribute else set()
    mappings = list(
        SamlGroupMapping.objects.filter(provider=provider, idp_group__in=present)
        .select_related("role")
        .prefetch_related("role_groups")
        .order_by("id")
    )
    role = next((m.role for m in mappings if m.role is not None), None) or provider.default_role
    groups = {g for m in mappings for g in m.role_groups.all()}
    return role, groups


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
    if User.objects.filter(username__iexact=profile["username"]).exists():
        raise _about(Refusal.USERNAME_TAKEN, provider, assertion, None)
    if User.objects.filter(email__iexact=profile["email"]).exists():
        raise _about(Refusal.EMAIL_TAKEN, provider, assertion, None)
    user = User(
        owner=provider.owner,
        username=profile["username"],
        email=profile["email"],
        first_name=profile["first_name"],
        last_name=profile["last_name"],
        kind=UserKind.INTERACTIVE,
        auth_source=AuthSource.SAML,
        allow_login=True,
        role=role,
        created_at=now,
        updated_at=now,
    )
    user.set_unusable_password()
    user.save()
    user.extra_role_groups.set(groups)
    audit.record(
        AuditAction.USER_CREATED,
        actor=None,
        actor_label=f"SSO: {provider.name}",
        target=user,
        owner=provider.owner,
        method="saml",
        changes=diff(
            {},
            {
                **{k: v for k, v in profile.items() if v},
                "role": role.name if role else None,
                "extra_role_groups": sorted(g.name for g in groups),
                "auth_source": AuthSource.SAML,
            },
        ),
        details=f"Created at first sign-in through {provider.name}.",
        context={"provider": provider.pk, "name_id": assertion.name_id},
    )
    return user


def _update_user(provider, assertion, user, profile, role, groups, *, now) -> None:
    User = get_user_model()
    before = _snapshot(user)
    for name in ("first_name", "last_name"):
        if profile[name]:
            setattr(user, name, profile[name])
    email = profile["email"]
    if email and email.lower() != user.email.lower():
        taken = User.objects.filter(email__iexact=email).exclude(pk=user.pk).exists()
        if not taken:
            user.email = email
    user.role = role
    after = {**_snapshot(user), "extra_role_groups": sorted(g.name for g in groups)}
    changes = diff(before, after)
    if not changes:
        return
    user.row_version += 1
    user.updated_at = now
    user.save(
        update_fields=["first_name", "last_name", "email", "role", "row_version", "updated_at"]
    )
    user.extra_role_groups.set(groups)
    if "role" in changes or "extra_role_groups" in changes:
        versions.bump_user(user)
    audit.record(
        AuditAction.USER_CHANGED,
        actor=None,
        actor_label=f"SSO: {provider.name}",
        target=user,
        owner=provider.owner,
        method="saml",
        changes=changes,
        details=f"Updated from the assertion of {provider.name}.",
        context={"provider": provider.pk, "name_id": assertion.name_id},
    )


def _snapshot(user) -> dict:
    return {
        "first_name": user.first_name,
        "last_name": user.last_name,
        "email": user.email,
        "role": user.role.name if user.role_id else None,
        "extra_role_groups": sorted(user.extra_role_groups.values_list("name", flat=True))
        if user.pk
        else [],
    }


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


def save_provider(actor, provider: SamlIdentityProvider | None, data: dict, *, row_version=None):
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
        )
    return provider


def _load_check(provider) -> None:
    """Refuse metadata that pysaml2 itself cannot load."""
    try:
        saml_config.sp_config(provider)
    except Exception as exc:
        raise ValidationError({"metadata_xml": f"The metadata cannot be used: {exc}"}) from exc


def _unique_slug(owner, name: str) -> str:
    base = slugify(name)[:50] or "idp"
    slug, n = base, 1
    while SamlIdentityProvider.objects.filter(owner=owner, slug=slug).exists():
        n += 1
        slug = f"{base}-{n}"
    return slug


def delete_provider(actor, provider) -> None:
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
        )
        provider.delete()


def save_group_mapping(actor, provider, mapping: SamlGroupMapping | None, data: dict):
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
        )
    return mapping


def delete_group_mapping(actor, provider, mapping) -> None:
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
    return SamlIdentityProvider.objects.filter(enabled=True).select_related("owner")


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
