"""System checks of single sign-on: the service provider's key pair and xmlsec1."""

from __future__ import annotations

import os

from django.conf import settings
from django.core.checks import Error, Info, Tags, register


@register(Tags.security)
def check_sp_key_pair(app_configs=None, **kwargs):
    """Say when the SP key pair is missing or unreadable, and when it is generated per machine."""
    key_file = getattr(settings, "SAML_SP_KEY_FILE", "")
    cert_file = getattr(settings, "SAML_SP_CERT_FILE", "")
    messages = []
    if bool(key_file) != bool(cert_file):
        messages.append(
            Error(
                "Set both SAML_SP_KEY_FILE and SAML_SP_CERT_FILE, or neither.",
                id="security.E901",
            )
        )
    for name, path in (("SAML_SP_KEY_FILE", key_file), ("SAML_SP_CERT_FILE", cert_file)):
        if path and not os.access(path, os.R_OK):
            messages.append(
                Error(f"{name} names {path!r}, which cannot be read.", id="security.E902")
            )
    return messages


@register(Tags.security, deploy=True)
def check_sp_key_pair_is_shared(app_configs=None, **kwargs):
    if getattr(settings, "SAML_SP_KEY_FILE", "") and getattr(settings, "SAML_SP_CERT_FILE", ""):
        return []
    return [
        Info(
            "SAML_SP_KEY_FILE / SAML_SP_CERT_FILE are not set: the single sign-on key pair is "
            "generated under VAR_DIR/saml/ on first use.",
            hint="Set them when the portal runs on more than one machine or var/ is not kept, "
            "so that every machine signs with the key the identity providers know.",
            id="security.I901",
        )
    ]
