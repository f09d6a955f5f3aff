"""Single sign-on messages: read and verify an identity provider's SAML response.

A response is trusted only after pysaml2 has checked it against the keys of one provider's
metadata (signature, audience, destination, lifetime, InResponseTo). The provider is the one the
person chose on the sign-in page (kept in the SAML session with the request id), or, for sign-in
started at the IdP, the single enabled provider with that entity id that allows it. Nothing here
writes to the database; `services` does, with what this module vouches for.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass

import defusedxml
import defusedxml.ElementTree as SafeET
import saml2
from django.utils import timezone
from djangosaml2.cache import IdentityCache
from djangosaml2.overrides import Saml2Client
from djangosaml2.views import _set_subject_id
from saml2 import saml as saml_ns
from saml2.response import IncorrectlySigned, StatusError, UnsolicitedResponse
from saml2.sigver import MissingKey, SignatureError
from saml2.validate import ResponseLifetimeExceed, ToEarly

from . import config
from .models import SamlAssertionId, SamlIdentityProvider

PENDING_REQUESTS = "_saml2_pending_requests"
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
    GROUPS_OVERAGE = "groups_overage"
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
        GROUPS_OVERAGE: "Entra ID sent a link instead of the groups (too many groups)",
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


def verify_response(request, saml_response: str, relay_state: str = "", *, now=None):
    """Return (provider, Assertion) once pysaml2 has verified the response, else SsoRefused."""
    xml = _decode(saml_response)
    in_response_to, issuer = _peek(xml)
    pending = request.saml_session.get(PENDING_REQUESTS, {})
    solicited = pending.get(in_response_to) if in_response_to else None
    if not solicited:
        # Its request was answered already (or never made here): before calling it unsolicited,
        # see whether its assertion was used to sign in, which makes it a replay.
        _refuse_a_replay(xml)
    provider = _choose_provider(issuer, solicited)
    _check_algorithms(xml, provider)
    client = Saml2Client(
        config.sp_config(provider), identity_cache=IdentityCache(request.saml_session)
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


def _refuse_a_replay(xml: bytes) -> None:
    """Refuse as a replay a response whose assertion already signed someone in.

    Assertion ids are random and kept (`SamlAssertionId`) until the assertion expires, so a
    match means this very response, or its assertion, came back; an assertion id read from the
    unverified XML only names the refusal, it lets nothing in.
    """
    ids = [a.get("ID", "") for a in _parse(xml).iter(f"{{{SAML}}}Assertion")]
    used = (
        SamlAssertionId.objects.select_related("provider__owner")
        .filter(assertion_id__in=[i[:256] for i in ids if i])
        .first()
    )
    if used is not None:
        raise SsoRefused(Refusal.REPLAYED, used.assertion_id, provider=used.provider)


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
    if destination and destination != config.acs_url():
        return Refusal.WRONG_DESTINATION
    audiences = [a.text for a in root.iter(f"{{{SAML}}}Audience")]
    if audiences and config.sp_entity_id() not in audiences:
        return Refusal.WRONG_AUDIENCE
    if _out_of_time(root, timezone.now()):
        return Refusal.EXPIRED
    return Refusal.INVALID


def _out_of_time(root, now: datetime.datetime) -> bool:
    """Say whether a response is outside its time: issued more than a day away from now (pysaml2
    then refuses it without saying why), or its assertion already expired or not yet valid."""
    slack = datetime.timedelta(seconds=config.ACCEPTED_TIME_DIFF)
    issued = _instant(root.get("IssueInstant", ""))
    if issued is not None and abs(now - issued) > datetime.timedelta(days=1) + slack:
        return True
    for element in (
        *root.iter(f"{{{SAML}}}Conditions"),
        *root.iter(f"{{{SAML}}}SubjectConfirmationData"),
    ):
        ends = _instant(element.get("NotOnOrAfter", ""))
        starts = _instant(element.get("NotBefore", ""))
        if (ends is not None and now >= ends + slack) or (
            starts is not None and now < starts - slack
        ):
            return True
    return False


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
    expires_at = max(expires_at, now) + datetime.timedelta(seconds=config.ACCEPTED_TIME_DIFF)
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
        parsed = datetime.datetime.fromisoformat((value or "").replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)
