"""The SAML session: a second, short session whose cookie survives the IdP's cross-site POST.

The portal's own session cookie is SameSite=Lax, so the browser leaves it out of the POST an
identity provider makes to the assertion consumer service. djangosaml2 keeps the pending
AuthnRequest ids in a session of its own with a SameSite=None cookie; browsers drop such a cookie
unless it is also Secure (Chromium accepts Secure cookies on http://127.0.0.1 and localhost), so
this middleware always marks it Secure.

Only the single sign-on URLs (namespace "saml") read it, so only their requests get it: every
other page is spared the second session's bookkeeping.
"""

from __future__ import annotations

from djangosaml2.middleware import SamlSessionMiddleware as _SamlSessionMiddleware


class SamlSessionMiddleware(_SamlSessionMiddleware):
    """djangosaml2's SAML session, with a cookie that is always Secure, HttpOnly, SameSite=None,
    on the requests of the single sign-on URLs."""

    def process_request(self, request):
        return None

    def process_view(self, request, view_func, view_args, view_kwargs):
        match = request.resolver_match
        if match is not None and "saml" in match.namespaces:
            super().process_request(request)
        return None

    def process_response(self, request, response):
        if not hasattr(request, "saml_session"):
            return response
        response = super().process_response(request, response)
        cookie = response.cookies.get(self.cookie_name)
        if cookie is not None and cookie.value:
            cookie["secure"] = True
            cookie["httponly"] = True
            cookie["samesite"] = "None"
        return response
