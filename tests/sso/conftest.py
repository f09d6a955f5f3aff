"""Fixtures of the SSO tests: a signing test IdP, a provider of the owner, and the flow helpers."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from sso.models import PRESET_ATTRIBUTES, SamlIdentityProvider
from tests.sso.idp import TestIdp

ACS = "/saml2/acs/"


@pytest.fixture(scope="session")
def idp():
    return TestIdp()


@pytest.fixture(scope="session")
def other_idp():
    """Another IdP with its own keys (an attacker's, or another customer's)."""
    return TestIdp(
        "https://evil.example.test/metadata", base_url="https://evil.example.test", keys="other-idp"
    )


def make_provider(owner, idp, *, preset="okta", **fields) -> SamlIdentityProvider:
    attributes = dict(PRESET_ATTRIBUTES[preset])
    attributes.update({k: v for k, v in fields.items() if k.endswith("_attribute")})
    others = {k: v for k, v in fields.items() if not k.endswith("_attribute")}
    others.setdefault("jit_provisioning", True)
    return SamlIdentityProvider.objects.create(
        owner=owner,
        name=others.pop("name", f"{preset.title()} of {owner.name}"),
        slug=others.pop("slug", f"{preset}-{owner.pk}"),
        entity_id=idp.entity_id,
        metadata_xml=others.pop("metadata_xml", idp.metadata_xml),
        preset=preset,
        **attributes,
        **others,
    )


@pytest.fixture
def provider(owner, idp):
    return make_provider(owner, idp)


def start_sign_in(client, provider, next_path: str = "") -> tuple[str, str]:
    """Click "Sign in with …": return the id of the AuthnRequest the portal sent to the IdP."""
    url = f"/saml2/login/?idp={provider.pk}"
    if next_path:
        url += f"&next={next_path}"
    response = client.get(url)
    assert response.status_code == 302, response.content[:500]
    location = response.headers["Location"]
    query = parse_qs(urlsplit(location).query)
    assert "Signature" in query and query["SigAlg"] == [
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    ]
    return query["SAMLRequest"][0], query.get("RelayState", [""])[0]


def post_response(client, saml_response: str, relay_state: str = ""):
    data = {"SAMLResponse": saml_response}
    if relay_state:
        data["RelayState"] = relay_state
    return client.post(ACS, data)


def sign_in(client, idp, provider, name_id, attributes, *, next_path: str = "", **kwargs):
    """Run the whole SP-initiated flow; return the ACS response."""
    saml_request, relay_state = start_sign_in(client, provider, next_path)
    request = idp.parse_request(saml_request)
    saml_response = idp.response(name_id, attributes, in_response_to=request.id, **kwargs)
    return post_response(client, saml_response, relay_state)
