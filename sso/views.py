"""SAML endpoints under /saml2/: start a sign-in, consume the response, SP metadata, logout.

Every endpoint is public (the identity provider and anonymous browsers call them) except the
logout starter; each refusal shows the same generic page, while the audit log keeps the reason.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import urlsplit

import saml2
from django.conf import settings
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render, resolve_url
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from djangosaml2.cache import IdentityCache, StateCache
from djangosaml2.overrides import Saml2Client
from djangosaml2.utils import get_location
from djangosaml2.views import _get_subject_id
from saml2 import saml as saml_ns
from saml2.metadata import entity_descriptor

from accounts import services as account_services
from portal.access import public, signed_in

from . import config, responses, services
from .metadata import BINDING_REDIRECT, parse_idp_metadata
from .models import SamlIdentityProvider

logger = logging.getLogger(__name__)


def _safe_path(request, target: str) -> str:
    """Return `target` when it stays on this site, else the home page (no open redirect)."""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return resolve_url(settings.LOGIN_REDIRECT_URL)


def sso_error(request, status: int = 403):
    """The one page a person sees whatever went wrong with single sign-on."""
    return render(
        request,
        "sso/error.html",
        {"reference": getattr(request, "request_id", "")},
        status=status,
    )


def _provider_from(value) -> SamlIdentityProvider | None:
    try:
        pk = int(value)
    except (TypeError, ValueError):
        return None
    return SamlIdentityProvider.objects.filter(pk=pk, enabled=True).first()


def _logout_client(request, provider) -> tuple[Saml2Client, StateCache]:
    """Return a SAML client for single logout with `provider`, and the state it keeps in the
    person's SAML session (synced back once the client is done)."""
    state = StateCache(request.saml_session)
    client = Saml2Client(
        config.sp_config(provider),
        state_cache=state,
        identity_cache=IdentityCache(request.saml_session),
    )
    return client, state


@public
@never_cache
@require_GET
def sign_in(request):
    """Send the person to the chosen identity provider with a signed AuthnRequest."""
    next_path = _safe_path(request, request.GET.get("next", ""))
    provider = _provider_from(request.GET.get("idp"))
    if provider is None:
        return sso_error(request, status=404)
    if request.user.is_authenticated:
        return redirect(next_path)
    client = Saml2Client(config.sp_config(provider))
    bindings = parse_idp_metadata(provider.metadata_xml).sso_bindings
    if BINDING_REDIRECT in bindings:
        request_id, info = client.prepare_for_authenticate(
            entityid=provider.entity_id,
            relay_state=next_path,
            binding=saml2.BINDING_HTTP_REDIRECT,
            sign=True,
            sigalg=config.SIGNING_ALGORITHM,
            digest_alg=config.DIGEST_ALGORITHM,
            nameid_format=saml_ns.NAMEID_FORMAT_UNSPECIFIED,
        )
        response = HttpResponseRedirect(get_location(info))
    else:
        location = client.sso_location(provider.entity_id, saml2.BINDING_HTTP_POST)
        request_id, message = client.create_authn_request(
            location,
            binding=saml2.BINDING_HTTP_POST,
            sign=True,
            sign_alg=config.SIGNING_ALGORITHM,
            digest_alg=config.DIGEST_ALGORITHM,
            nameid_format=saml_ns.NAMEID_FORMAT_UNSPECIFIED,
        )
        response = render(
            request,
            "sso/post_binding.html",
            {
                "provider": provider,
                "target_url": location,
                "saml_request": base64.b64encode(str(message).encode("utf-8")).decode("ascii"),
                "relay_state": next_path,
            },
        )
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(location))
        response._csp_config = {**settings.SECURE_CSP, "form-action": ["'self'", origin]}
    responses.remember_request(request.saml_session, request_id, provider, next_path)
    return response


@public
@csrf_exempt
@never_cache
@require_POST
def assertion_consumer_service(request):
    """Verify the identity provider's response and start the person's session."""
    relay_state = request.POST.get("RelayState", "")
    try:
        services.sign_in_with_response(request, request.POST.get("SAMLResponse", ""), relay_state)
    except responses.SsoRefused as refusal:
        logger.info("SSO refused: %s", refusal)
        return sso_error(request)
    return redirect(_safe_path(request, relay_state))


@public
@require_GET
def metadata(request):
    """Serve the portal's SP metadata (entity id, ACS, logout, signing certificate)."""
    document = str(entity_descriptor(config.sp_config()))
    response = HttpResponse(document.encode("utf-8"), content_type="text/xml; charset=utf-8")
    if request.GET.get("download"):
        response["Content-Disposition"] = 'attachment; filename="billing-access-sp-metadata.xml"'
    return response


@signed_in
@never_cache
@require_POST
def sign_out(request):
    """End the local session, then ask the identity provider to end its own when it can."""
    provider_id = request.session.get(services.SIGNED_IN_PROVIDER)
    provider = _provider_from(provider_id)
    account_services.sign_out(request)
    if provider is None or not parse_idp_metadata(provider.metadata_xml).supports_logout:
        return redirect(settings.LOGOUT_REDIRECT_URL)
    subject_id = _get_subject_id(request.saml_session)
    if subject_id is None:
        return redirect(settings.LOGOUT_REDIRECT_URL)
    client, state = _logout_client(request, provider)
    try:
        result = client.global_logout(subject_id, sign=True, sign_alg=config.SIGNING_ALGORITHM)
    except Exception:
        logger.warning("Single logout at %s failed", provider, exc_info=True)
        return redirect(settings.LOGOUT_REDIRECT_URL)
    finally:
        state.sync()
    for info in (result or {}).values():
        if isinstance(info, tuple) and info[0] == saml2.BINDING_HTTP_REDIRECT:
            return HttpResponseRedirect(get_location(info[1]))
    return redirect(settings.LOGOUT_REDIRECT_URL)


@public
@csrf_exempt
@never_cache
@require_http_methods(["GET", "POST"])
def logout_service(request):
    """Answer the identity provider's logout request; end the local session when it is genuine.

    A LogoutResponse (the answer to the portal's own request) needs nothing more: the local
    session ended before the request was sent. A LogoutRequest must be signed by the provider
    the person signed in with and name that person, else it is ignored.
    """
    data = request.POST if request.method == "POST" else request.GET
    binding = saml2.BINDING_HTTP_POST if request.method == "POST" else BINDING_REDIRECT
    provider = _provider_from(request.session.get(services.SIGNED_IN_PROVIDER))
    subject_id = _get_subject_id(request.saml_session)
    if "SAMLRequest" not in data or provider is None or subject_id is None:
        return redirect(settings.LOGOUT_REDIRECT_URL)
    client, state = _logout_client(request, provider)
    signature = {"sigalg": data.get("SigAlg"), "signature": data.get("Signature")}
    try:
        if not responses.logout_request_is_signed(data["SAMLRequest"], binding, **signature):
            raise ValueError("unsigned LogoutRequest")
        message = client.parse_logout_request(
            data["SAMLRequest"], binding, relay_state=data.get("RelayState", ""), **signature
        )
        if message is None or message.message.name_id.text != subject_id.text:
            raise ValueError("LogoutRequest for another person")
        if binding == BINDING_REDIRECT and not _redirect_signature_ok(message, data):
            raise ValueError("LogoutRequest signature does not verify")
        info = client.handle_logout_request(
            data["SAMLRequest"],
            subject_id,
            binding,
            sign=True,
            sign_alg=config.SIGNING_ALGORITHM,
            digest_alg=config.DIGEST_ALGORITHM,
            relay_state=data.get("RelayState", ""),
            **signature,
        )
    except Exception:  # a doubtful logout request changes nothing
        logger.warning("Ignored a logout request claiming to come from %s", provider, exc_info=True)
        return redirect(settings.LOGOUT_REDIRECT_URL)
    finally:
        state.sync()
    account_services.sign_out(request)
    return HttpResponseRedirect(get_location(info))


def _redirect_signature_ok(message, data) -> bool:
    """Verify a Redirect-binding signature with the provider's metadata keys.

    pysaml2 checks it only when configured as an IdP that wants signed requests, never for a
    service provider, so the portal asks for the check itself.
    """
    names = ("SAMLRequest", "RelayState", "SigAlg", "Signature")
    signed = {name: data[name] for name in names if name in data}
    return bool(message._do_redirect_sig_check(signed))
