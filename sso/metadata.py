"""Read an identity provider's metadata XML safely and say what it offers.

The document comes from an administrator's upload, so it is untrusted input: it is parsed with
defusedxml (no DTD, no entities, no external references) and must describe exactly one identity
provider with a single sign-on endpoint and at least one signing certificate.
"""

from __future__ import annotations

import base64
import binascii
import datetime
from dataclasses import dataclass, field

import defusedxml
import defusedxml.ElementTree as SafeET
from django.core.exceptions import ValidationError

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"
BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
MAX_METADATA_BYTES = 1_000_000


@dataclass(frozen=True)
class SigningCertificate:
    subject: str
    not_valid_after: datetime.datetime

    @property
    def expired(self) -> bool:
        return self.not_valid_after < datetime.datetime.now(datetime.UTC)


@dataclass(frozen=True)
class IdpMetadata:
    """What an IdP's metadata says: its entity id, endpoints and signing certificates."""

    entity_id: str
    sso_bindings: tuple[str, ...]
    slo_bindings: tuple[str, ...]
    certificates: tuple[SigningCertificate, ...] = field(default=())

    @property
    def supports_logout(self) -> bool:
        return bool(self.slo_bindings)


def parse_idp_metadata(xml: str | bytes) -> IdpMetadata:
    """Return what the metadata describes, or raise ValidationError saying what is wrong."""
    if isinstance(xml, str):
        xml = xml.encode("utf-8")
    xml = xml.strip()
    if not xml:
        raise ValidationError("Paste or upload the identity provider's metadata XML.")
    if len(xml) > MAX_METADATA_BYTES:
        raise ValidationError("This metadata is larger than 1 MB; it cannot be an IdP's metadata.")
    try:
        root = SafeET.fromstring(xml, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DefusedXmlException as exc:
        raise ValidationError(
            "This XML declares a DTD or entities, which metadata never needs; it was refused."
        ) from exc
    except SafeET.ParseError as exc:
        raise ValidationError(f"This is not well-formed XML ({exc}).") from exc

    descriptor = _idp_entity(root)
    entity_id = (descriptor.get("entityID") or "").strip()
    if not entity_id:
        raise ValidationError("The metadata has no entityID.")
    idp = descriptor.find(f"{{{MD}}}IDPSSODescriptor")
    if idp is None or SAML_PROTOCOL not in (idp.get("protocolSupportEnumeration") or ""):
        raise ValidationError("The metadata does not describe a SAML 2.0 identity provider.")
    sso = tuple(
        s.get("Binding", "")
        for s in idp.findall(f"{{{MD}}}SingleSignOnService")
        if s.get("Binding") in (BINDING_REDIRECT, BINDING_POST) and s.get("Location")
    )
    if not sso:
        raise ValidationError(
            "The metadata has no single sign-on endpoint with the HTTP-Redirect or HTTP-POST "
            "binding."
        )
    slo = tuple(
        s.get("Binding", "")
        for s in idp.findall(f"{{{MD}}}SingleLogoutService")
        if s.get("Binding") in (BINDING_REDIRECT, BINDING_POST) and s.get("Location")
    )
    certificates = tuple(
        _certificate(key)
        for key in idp.findall(f"{{{MD}}}KeyDescriptor")
        if key.get("use") in (None, "", "signing")
    )
    certificates = tuple(c for c in certificates if c is not None)
    if not certificates:
        raise ValidationError(
            "The metadata has no signing certificate, so no assertion could be trusted."
        )
    return IdpMetadata(entity_id, sso, slo, certificates)


def _idp_entity(root):
    if root.tag == f"{{{MD}}}EntityDescriptor":
        return root
    if root.tag == f"{{{MD}}}EntitiesDescriptor":
        idps = [
            e
            for e in root.iter(f"{{{MD}}}EntityDescriptor")
            if e.find(f"{{{MD}}}IDPSSODescriptor") is not None
        ]
        if len(idps) == 1:
            return idps[0]
        raise ValidationError(
            "The metadata lists several identity providers; upload the one for this provider."
        )
    raise ValidationError("This is not SAML metadata (no EntityDescriptor).")


def _certificate(key_descriptor) -> SigningCertificate | None:
    from cryptography import x509

    node = key_descriptor.find(f".//{{{DS}}}X509Certificate")
    if node is None or not (node.text or "").strip():
        return None
    try:
        der = base64.b64decode("".join(node.text.split()), validate=True)
        cert = x509.load_der_x509_certificate(der)
    except (binascii.Error, ValueError) as exc:
        raise ValidationError("A signing certificate in the metadata cannot be read.") from exc
    return SigningCertificate(cert.subject.rfc4514_string(), cert.not_valid_after_utc)
