"""The SAML session: a second, short session whose cookie survives the IdP's cross-site POST.

The portal's own session cookie is SameSite=Lax, so the browser leaves it out of the POST an
identity provider makes to the assertion consumer service. djangosaml2 keeps the pending
AuthnRequest ids in a session of its own with a SameSite=None cookie; browsers drop such a cookie
unless it is also Secure (Chromium accepts Secure cookies on http://127.0.0.1 and localhost), so
this middleware always marks it Secure.
"""

from __future__ import annotations

from djangosaml2.middleware import SamlSessionMiddleware as _SamlSessionMiddleware


class SamlSessionMiddleware(_SamlSessionMiddleware):
    """djangosaml2's SAML session, with a cookie that is always Secure, HttpOnly, SameSite=None."""

    def process_response(self, request, response):
        response = super().process_response(request, response)
        cookie = response.cookies.get(self.cookie_name)
        if cookie is not None and cookie.value:
            cookie["secure"] = True
            cookie["httponly"] = True
            cookie["samesite"] = "None"
        return response
