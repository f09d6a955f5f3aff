"""The portal as a SAML service provider: its key pair, its URLs, and one pysaml2 configuration per
identity provider (so that a response is checked against that provider's keys and nothing else).

The service provider is one for the whole portal: entity id `<PUBLIC_URL>/saml2/metadata/`,
assertion consumer service `<PUBLIC_URL>/saml2/acs/`. Its signing key and certificate come from
`SAML_SP_KEY_FILE` / `SAML_SP_CERT_FILE`; without them a pair is generated once under
`VAR_DIR/saml/` (fine for development, a deployment check warns elsewhere).
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import os
import shutil
from pathlib import Path

import saml2
from django.conf import settings
from saml2 import xmldsig
from saml2.config import SPConfig

SIGNING_ALGORITHM = xmldsig.SIG_RSA_SHA256
DIGEST_ALGORITHM = xmldsig.DIGEST_SHA256
# Clocks of the IdP and the portal may differ by this much (seconds).
ACCEPTED_TIME_DIFF = 60


def public_url(path: str = "") -> str:
    return settings.PUBLIC_URL.rstrip("/") + path


def sp_entity_id() -> str:
    return public_url("/saml2/metadata/")


def acs_url() -> str:
    return public_url("/saml2/acs/")


def xmlsec_binary() -> str:
    configured = getattr(settings, "SAML_XMLSEC_BINARY", "")
    return configured or shutil.which("xmlsec1") or "/usr/bin/xmlsec1"


def sp_key_pair() -> tuple[str, str]:
    """Return the paths of the service provider's private key and certificate.

    Use SAML_SP_KEY_FILE / SAML_SP_CERT_FILE when set; otherwise generate a pair once under
    VAR_DIR/saml/ (under a file lock, so parallel processes agree on one pair).
    """
    key_file = getattr(settings, "SAML_SP_KEY_FILE", "")
    cert_file = getattr(settings, "SAML_SP_CERT_FILE", "")
    if key_file and cert_file:
        return key_file, cert_file
    folder = Path(settings.VAR_DIR) / "saml"
    key_path, cert_path = folder / "sp.key", folder / "sp.crt"
    if key_path.exists() and cert_path.exists():
        return str(key_path), str(cert_path)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (key_path.exists() and cert_path.exists()):
            key_pem, cert_pem = generate_key_pair(common_name=settings.PUBLIC_URL)
            _write_private(key_path, key_pem)
            cert_path.write_bytes(cert_pem)
    return str(key_path), str(cert_path)


def generate_key_pair(common_name: str, days: int = 3650) -> tuple[bytes, bytes]:
    """Return (private key PEM, self-signed certificate PEM): RSA 2048 signed with SHA-256."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "sp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


_CONFIGS: dict[tuple, SPConfig] = {}
_MAX_CONFIGS = 64


def sp_config(provider=None) -> SPConfig:
    """Return the service-provider configuration for `provider` (cached per provider state).

    Loading one reads the private key, which costs a noticeable fraction of a second; the
    cache key holds everything the configuration depends on, so an edited provider (new
    metadata, IdP-initiated switched) or a changed setting gets a fresh one.
    """
    key = (
        settings.PUBLIC_URL,
        *sp_key_pair(),
        xmlsec_binary(),
        provider.pk if provider is not None else None,
        bool(provider and provider.allow_idp_initiated),
        hashlib.sha256(provider.metadata_xml.encode("utf-8")).hexdigest() if provider else "",
    )
    config = _CONFIGS.get(key)
    if config is None:
        config = _build_sp_config(provider)
        if len(_CONFIGS) >= _MAX_CONFIGS:
            _CONFIGS.clear()
        _CONFIGS[key] = config
    return config


def _build_sp_config(provider=None) -> SPConfig:
    """Return the pysaml2 service-provider configuration, trusting only `provider`'s metadata.

    Without a provider (the SP metadata document) no identity provider is trusted at all.
    Assertions must be signed; responses not asked for are refused unless the provider allows
    sign-in started at the IdP; requests and logout messages are signed with SHA-256.
    """
    key_file, cert_file = sp_key_pair()
    config = {
        "entityid": sp_entity_id(),
        "name": "Billing Access",
        "xmlsec_binary": xmlsec_binary(),
        "key_file": key_file,
        "cert_file": cert_file,
        "encryption_keypairs": [{"key_file": key_file, "cert_file": cert_file}],
        "accepted_time_diff": ACCEPTED_TIME_DIFF,
        "only_use_keys_in_metadata": True,
        "allow_unknown_attributes": True,
        "signing_algorithm": SIGNING_ALGORITHM,
        "digest_algorithm": DIGEST_ALGORITHM,
        "delete_tmpfiles": True,
        "service": {
            "sp": {
                "name": "Billing Access",
                "endpoints": {
                    "assertion_consumer_service": [(acs_url(), saml2.BINDING_HTTP_POST)],
                    "single_logout_service": [
                        (public_url("/saml2/ls/"), saml2.BINDING_HTTP_REDIRECT),
                        (public_url("/saml2/ls/post/"), saml2.BINDING_HTTP_POST),
                    ],
                },
                "want_assertions_signed": True,
                "want_response_signed": False,
                "authn_requests_signed": True,
                "logout_requests_signed": True,
                "allow_unsolicited": bool(provider and provider.allow_idp_initiated),
                "name_id_format_allow_create": True,
                "required_attributes": [],
                "optional_attributes": [],
            }
        },
        "metadata": {"inline": [provider.metadata_xml]} if provider is not None else {},
    }
    conf = SPConfig()
    conf.load(config)
    return conf
