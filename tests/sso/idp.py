"""A real SAML identity provider for tests: pysaml2's Server, signing with SHA-256.

`TestIdp(entity_id)` holds its own key pair and metadata; `metadata_xml` is what an administrator
would upload to the portal. `response(...)` answers an AuthnRequest (or nothing, IdP-initiated)
with a signed Response as the base64 string the browser would POST to the portal's ACS.
"""

from __future__ import annotations

import base64
import functools
import tempfile
from pathlib import Path

import saml2
from saml2 import saml, xmldsig
from saml2.config import IdPConfig, SPConfig
from saml2.metadata import entity_descriptor
from saml2.server import Server

from sso import config as saml_config

ENTRA_CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
ENTRA_GROUPS = "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
KEYS_DIR = Path(tempfile.gettempdir()) / "billing-access-test-idp-keys"


@functools.cache
def key_pair(name: str) -> tuple[str, str]:
    """Return (key path, cert path) of a test key pair, generated once per machine."""
    KEYS_DIR.mkdir(exist_ok=True)
    key, cert = KEYS_DIR / f"{name}.key", KEYS_DIR / f"{name}.crt"
    if not (key.exists() and cert.exists()):
        key_pem, cert_pem = saml_config.generate_key_pair(name)
        tmp_key, tmp_cert = key.with_suffix(".key.tmp"), cert.with_suffix(".crt.tmp")
        tmp_key.write_bytes(key_pem)
        tmp_cert.write_bytes(cert_pem)
        tmp_key.rename(key)
        tmp_cert.rename(cert)
    return str(key), str(cert)


OTHER_SP_ENTITY_ID = "https://other-sp.example.test/metadata"
OTHER_SP_ACS = "https://other-sp.example.test/acs"


@functools.cache
def other_sp_metadata() -> str:
    """Metadata of another service provider the same IdP serves (for misdirected responses)."""
    key_file, cert_file = key_pair("other-sp")
    config = SPConfig()
    config.load(
        {
            "entityid": OTHER_SP_ENTITY_ID,
            "xmlsec_binary": saml_config.xmlsec_binary(),
            "key_file": key_file,
            "cert_file": cert_file,
            "service": {
                "sp": {
                    "endpoints": {
                        "assertion_consumer_service": [(OTHER_SP_ACS, saml2.BINDING_HTTP_POST)]
                    }
                }
            },
        }
    )
    return str(entity_descriptor(config))


class TestIdp:
    """An identity provider at `base_url` that trusts the portal's current SP metadata."""

    __test__ = False

    def __init__(
        self,
        entity_id: str = "https://idp.example.test/metadata",
        *,
        base_url: str = "https://idp.example.test",
        keys: str = "idp",
        sp_metadata: str | None = None,
        with_logout: bool = False,
    ):
        self.entity_id = entity_id
        self.base_url = base_url
        self.keys = keys
        key_file, cert_file = key_pair(keys)
        self.sso_url = f"{base_url}/sso"
        endpoints = {
            "single_sign_on_service": [
                (self.sso_url, saml2.BINDING_HTTP_REDIRECT),
                (self.sso_url + "/post", saml2.BINDING_HTTP_POST),
            ]
        }
        if with_logout:
            endpoints["single_logout_service"] = [(f"{base_url}/slo", saml2.BINDING_HTTP_REDIRECT)]
        sp_metadata = sp_metadata or str(entity_descriptor(saml_config.sp_config()))
        config = IdPConfig()
        config.load(
            {
                "entityid": entity_id,
                "xmlsec_binary": saml_config.xmlsec_binary(),
                "key_file": key_file,
                "cert_file": cert_file,
                "signing_algorithm": xmldsig.SIG_RSA_SHA256,
                "digest_algorithm": xmldsig.DIGEST_SHA256,
                "allow_unknown_attributes": True,
                "service": {
                    "idp": {
                        "name": "Test IdP",
                        "endpoints": endpoints,
                        "policy": {
                            "default": {
                                "lifetime": {"minutes": 5},
                                "attribute_restrictions": None,
                                "name_form": UNSPECIFIED,
                            }
                        },
                        "name_id_format": [saml.NAMEID_FORMAT_PERSISTENT],
                    }
                },
                "metadata": {"inline": [sp_metadata, other_sp_metadata()]},
            }
        )
        self.config = config
        self.server = Server(config=config)

    @property
    def metadata_xml(self) -> str:
        return str(entity_descriptor(self.config))

    def parse_request(self, saml_request: str, binding=saml2.BINDING_HTTP_REDIRECT):
        """Return the AuthnRequest the portal sent (checking its signature)."""
        return self.server.parse_authn_request(saml_request, binding).message

    def response(
        self,
        name_id: str,
        attributes: dict[str, list[str] | str] | None = None,
        *,
        in_response_to: str | None = None,
        destination: str | None = None,
        audience: str | None = None,
        sign_response: bool = True,
        sign_assertion: bool = True,
        sign_alg: str = xmldsig.SIG_RSA_SHA256,
        digest_alg: str = xmldsig.DIGEST_SHA256,
    ) -> str:
        """Return a signed Response (base64) for `name_id` with these attributes."""
        identity = {k: (v if isinstance(v, list) else [v]) for k, v in (attributes or {}).items()}
        xml = self.server.create_authn_response(
            identity=identity,
            in_response_to=in_response_to,
            destination=destination or saml_config.acs_url(),
            sp_entity_id=audience or saml_config.sp_entity_id(),
            name_id=saml.NameID(format=saml.NAMEID_FORMAT_PERSISTENT, text=name_id),
            authn={"class_ref": saml.AUTHN_PASSWORD_PROTECTED, "authn_auth": self.entity_id},
            sign_response=sign_response,
            sign_assertion=sign_assertion,
            sign_alg=sign_alg,
            digest_alg=digest_alg,
        )
        return base64.b64encode(str(xml).encode("utf-8")).decode("ascii")


def decode(saml_response: str) -> str:
    return base64.b64decode(saml_response).decode("utf-8")


def encode(xml: str) -> str:
    return base64.b64encode(xml.encode("utf-8")).decode("ascii")
