"""Browser: SP-initiated single sign-on in headless Chromium against an IdP served on localhost.

The identity provider is pysaml2's Server behind a tiny WSGI app on 127.0.0.1 (another site than
the portal on localhost, so the portal's SameSite=Lax session cookie stays home during the
IdP's POST, as in real life). Its page carries the signed response in a form the test clicks.
"""

from __future__ import annotations

import html
import threading
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from playwright.sync_api import expect

from accounts.models import User
from audit.models import AuditEvent
from sso import config as saml_config
from sso.models import SamlGroupMapping
from tests.builders import PASSWORD, make_role, make_role_group
from tests.sso.conftest import make_provider
from tests.sso.idp import TestIdp

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, *args):  # keep the test output readable
        pass


class LocalIdp:
    """Serve a TestIdp's single sign-on endpoint on 127.0.0.1 in a thread."""

    def __init__(self, person: dict):
        self.person = person
        self.server = make_server("127.0.0.1", 0, self.app, handler_class=_QuietHandler)
        self.base_url = f"http://127.0.0.1:{self.server.server_port}"
        # Built after the portal's PUBLIC_URL is set, so it trusts fresh SP metadata.
        self.idp = TestIdp(
            "http://idp.localhost.test/metadata", base_url=self.base_url, keys="browser-idp"
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def app(self, environ, start_response):
        query = parse_qs(environ.get("QUERY_STRING", ""))
        if environ["PATH_INFO"] != "/sso" or "SAMLRequest" not in query:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        request = self.idp.parse_request(query["SAMLRequest"][0])
        saml_response = self.idp.response(
            self.person["name_id"], self.person["attributes"], in_response_to=request.id
        )
        relay_state = query.get("RelayState", [""])[0]
        acs = saml_config.acs_url()
        page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>Test IdP</title></head><body><h1>Test identity provider</h1>
<p>Signed in as {html.escape(self.person["name_id"])}.</p>
<form method="post" action="{html.escape(acs)}">
<input type="hidden" name="SAMLResponse" value="{saml_response}">
<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">
<button type="submit">Continue to Billing Access</button></form></body></html>"""
        origin = saml_config.public_url()
        start_response(
            "200 OK",
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Content-Security-Policy", f"default-src 'none'; form-action {origin}"),
            ],
        )
        return [page.encode("utf-8")]


FRAN = {
    "name_id": "00u1fran",
    "attributes": {
        "email": "fran@acme.test",
        "firstName": "Fran",
        "lastName": "Finance",
        "groups": ["billing-clerks"],
    },
}


def test_sp_initiated_sign_in(page, live_server, settings, screenshot_dir, owner):
    settings.PUBLIC_URL = live_server.url
    clerk = make_role(owner, "Clerk", groups=[make_role_group(owner, grants={"users": "read"})])
    with LocalIdp(FRAN) as local_idp:
        provider = make_provider(owner, local_idp.idp, name="Acme Okta")
        SamlGroupMapping.objects.create(provider=provider, idp_group="billing-clerks", role=clerk)

        page.goto(f"{live_server.url}/sign-in/")
        page.screenshot(path=str(screenshot_dir / "sso-sign-in.png"), full_page=True)
        page.get_by_role("link", name="Sign in with Acme Okta").click()

        page.wait_for_url(f"{local_idp.base_url}/sso*")
        assert page.get_by_role("heading", name="Test identity provider").is_visible()
        page.get_by_role("button", name="Continue to Billing Access").click()

        page.wait_for_url(f"{live_server.url}/")
        assert page.get_by_role("heading", level=1).inner_text().startswith("Welcome, Fran")
        page.screenshot(path=str(screenshot_dir / "sso-home.png"), full_page=True)

    user = User.objects.get(username="00u1fran")
    assert (user.owner, user.role, user.auth_source) == (owner, clerk, "saml")
    assert AuditEvent.objects.filter(action="sign_in", method="saml", actor_id=user.pk).exists()


def test_refused_sign_in_shows_the_generic_page(page, live_server, settings, screenshot_dir, owner):
    settings.PUBLIC_URL = live_server.url
    with LocalIdp(FRAN) as local_idp:
        make_provider(owner, local_idp.idp, name="Acme Okta", jit_provisioning=False)
        page.goto(f"{live_server.url}/sign-in/")
        page.get_by_role("link", name="Sign in with Acme Okta").click()
        page.get_by_role("button", name="Continue to Billing Access").click()
        assert page.get_by_role("alert").inner_text().startswith("We could not sign you in")
        page.set_viewport_size({"width": 390, "height": 844})
        page.screenshot(path=str(screenshot_dir / "sso-refused-phone.png"), full_page=True)
    event = AuditEvent.objects.order_by("-id").first()
    assert (event.action, event.context["reason"]) == ("sign_in_failed", "unknown_user")


def test_administrator_screens(page, live_server, settings, screenshot_dir, admin_user):
    settings.PUBLIC_URL = live_server.url
    provider = make_provider(admin_user.owner, TestIdp(keys="browser-idp"), name="Acme Okta")
    SamlGroupMapping.objects.create(
        provider=provider, idp_group="billing-clerks", role=make_role(admin_user.owner, "Clerk")
    )
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{live_server.url}/sign-in/")
    page.get_by_label("Username or email").fill("admin")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    page.wait_for_url(f"{live_server.url}/")
    page.get_by_role("link", name="Single sign-on").first.click()
    expect(page.get_by_role("heading", name="Single sign-on", level=1)).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "sso-providers.png"), full_page=True)
    page.get_by_role("link", name="Acme Okta").click()
    expect(page.get_by_role("heading", name="Group mappings")).to_be_visible()
    page.screenshot(path=str(screenshot_dir / "sso-provider.png"), full_page=True)
    page.get_by_role("link", name="Edit", exact=True).click()
    # The preset script listens from DOMContentLoaded on; choose only once the page has loaded.
    page.wait_for_url("**/edit/", wait_until="load")
    page.get_by_label("Preset").select_option("entra")
    assert page.get_by_label("Email attribute").input_value().endswith("/claims/emailaddress")
    page.get_by_label("Preset").select_option("okta")
    assert page.get_by_label("Email attribute").input_value() == "email"
    page.screenshot(path=str(screenshot_dir / "sso-provider-edit.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(screenshot_dir / "sso-provider-edit-phone.png"), full_page=True)
    assert [e for e in errors if "Content Security Policy" in e] == []
