"""Browser: real WebAuthn ceremonies in Chromium with its virtual authenticator (the DevTools
protocol's WebAuthn domain, through Playwright's CDP session): add a passkey, sign in with it
after the password and without one, confirm it is you with it; the phishing-resistant rule;
a cloned authenticator and a deactivated user refused; the administrator's view.

WebAuthn needs a secure context and a domain name: the live server is served on localhost,
which is both, and is the portal's RP ID in the test settings."""

import pytest
from django.utils import timezone

from audit.models import AuditEvent
from roles import catalog
from tests.builders import PASSWORD, make_user
from tests.passkeys.authenticator import SoftAuthenticator
from tests.passkeys.conftest import enrol
from tests.security.conftest import set_policy

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def base(live_server, settings):
    assert live_server.url.startswith("http://localhost:")
    settings.OTP_WEBAUTHN_ALLOWED_ORIGINS = [live_server.url]
    return live_server.url


class VirtualAuthenticators:
    """Chromium's virtual authenticators for one page (WebAuthn.* over a CDP session)."""

    def __init__(self, page):
        self.cdp = page.context.new_cdp_session(page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})

    def add(self) -> str:
        options = {
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": True,
            "hasUserVerification": True,
            "isUserVerified": True,
            "automaticPresenceSimulation": True,
        }
        return self.cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})[
            "authenticatorId"
        ]

    def credentials(self, authenticator: str) -> list[dict]:
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})[
            "credentials"
        ]

    def copy(self, credential: dict, into: str, *, sign_count: int) -> None:
        clone = {
            key: credential[key]
            for key in ("credentialId", "isResidentCredential", "rpId", "privateKey", "userHandle")
        }
        self.cdp.send(
            "WebAuthn.addCredential",
            {"authenticatorId": into, "credential": {**clone, "signCount": sign_count}},
        )

    def remove(self, authenticator: str) -> None:
        self.cdp.send("WebAuthn.removeVirtualAuthenticator", {"authenticatorId": authenticator})

    def hide(self, authenticator: str) -> tuple[str, dict]:
        """Put the passkey aside: an empty authenticator takes the place of `authenticator`.

        The sign-in page's autofill request then finds nothing and ends, where a person would
        have ignored it; `restore` brings the passkey back for the button to use.
        """
        [credential] = self.credentials(authenticator)
        self.remove(authenticator)
        return self.add(), credential

    def restore(self, authenticator: str, credential: dict) -> None:
        self.copy(credential, authenticator, sign_count=credential["signCount"])


def offer_ended(page) -> None:
    """Wait until the sign-in page's autofill request (conditional mediation) has ended."""
    page.locator('[data-passkey="sign-in"][data-offer="ended"]').wait_for(state="attached")


def console_errors(page) -> list:
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    return errors


def sign_in_with_password(page, base, login="erin"):
    page.goto(f"{base}/sign-in/")
    page.get_by_label("Username or email").fill(login)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def sign_out(page, base):
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/sign-in/")


def add_passkey(page, base, name):
    page.goto(f"{base}/me/two-factor/")
    page.get_by_role("link", name="Add a passkey").click()
    page.wait_for_url(f"{base}/me/two-factor/passkeys/add/")
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(f"{base}/me/two-factor/")


def last_event(action):
    return AuditEvent.objects.filter(action=action).order_by("-seq").first()


def test_add_a_passkey_then_sign_in_with_it_and_step_up(page, base, owner, screenshot_dir):
    erin = make_user(owner, username="erin", first_name="Erin", last_name="Example")
    errors = console_errors(page)
    authenticators = VirtualAuthenticators(page)
    laptop = authenticators.add()

    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/")
    page.goto(f"{base}/me/two-factor/passkeys/add/")
    page.screenshot(path=str(screenshot_dir / "passkeys-add.png"), full_page=True)
    add_passkey(page, base, "Erin's laptop")
    assert page.get_by_text('Your passkey "Erin\'s laptop" was added.').is_visible()
    assert page.get_by_role("rowheader", name="Erin's laptop").is_visible()
    page.screenshot(path=str(screenshot_dir / "passkeys-two-factor-page.png"), full_page=True)
    assert len(authenticators.credentials(laptop)) == 1
    assert erin.webauthncredential_set.get().name == "Erin's laptop"

    # Password, then the passkey as the second step.
    laptop, passkey = authenticators.hide(laptop)
    sign_out(page, base)
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/sign-in/verify/")
    assert page.get_by_role("heading", name="Use your passkey").is_visible()
    page.screenshot(path=str(screenshot_dir / "passkeys-second-step.png"), full_page=True)
    authenticators.restore(laptop, passkey)
    page.get_by_role("button", name="Use your passkey").click()
    page.wait_for_url(f"{base}/")
    assert last_event("sign_in").method == "password+passkey"

    # Passwordless, once the owner allows it: the button ...
    set_policy(owner, allow_passwordless=True)
    laptop, passkey = authenticators.hide(laptop)
    sign_out(page, base)
    assert page.get_by_label("Username or email").get_attribute("autocomplete") == (
        "username webauthn"
    )
    button = page.get_by_role("button", name="Sign in with a passkey")
    button.wait_for()
    offer_ended(page)
    page.screenshot(path=str(screenshot_dir / "passkeys-sign-in.png"), full_page=True)
    authenticators.restore(laptop, passkey)
    button.click()
    page.wait_for_url(f"{base}/")
    signed_in = last_event("sign_in")
    assert signed_in.method == "passkey" and signed_in.subject_user_id == erin.pk

    # ... and the browser's autofill (conditional mediation): the virtual authenticator answers
    # the page's waiting request as a person picking the passkey in the username field would.
    page.goto(f"{base}/me/two-factor/")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(f"{base}/")
    assert AuditEvent.objects.filter(action="sign_in", method="passkey").count() == 2

    # Step-up: confirm it is you with the passkey, then back to where you were going.
    page.goto(f"{base}/me/confirm/?next=/me/two-factor/")
    page.screenshot(path=str(screenshot_dir / "passkeys-step-up.png"), full_page=True)
    before = timezone.now()
    page.get_by_role("button", name="Confirm with a passkey").click()
    page.wait_for_url(f"{base}/me/two-factor/")
    step_up = last_event("step_up")
    assert step_up.method == "passkey" and step_up.occurred_at >= before
    assert [e for e in errors if "Content Security Policy" in e] == []


def test_a_cloned_authenticator_and_a_deactivated_user_are_refused(
    page, base, owner, screenshot_dir
):
    set_policy(owner, allow_passwordless=True)
    erin = make_user(owner, username="erin", first_name="Erin", last_name="Example")
    authenticators = VirtualAuthenticators(page)
    original = authenticators.add()
    sign_in_with_password(page, base)
    page.wait_for_url(f"{base}/")
    add_passkey(page, base, "Original key")
    original, credential = authenticators.hide(original)
    sign_out(page, base)
    offer_ended(page)
    authenticators.restore(original, credential)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.wait_for_url(f"{base}/")
    [credential] = authenticators.credentials(original)
    assert erin.webauthncredential_set.get().sign_count == credential["signCount"] >= 1

    # A copy of the key made before that use: its counter is behind the portal's.
    empty, _ = authenticators.hide(original)
    sign_out(page, base)
    offer_ended(page)
    authenticators.copy(credential, empty, sign_count=0)
    page.get_by_role("button", name="Sign in with a passkey").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text().startswith("That passkey could not sign you in")
    assert page.url == f"{base}/sign-in/"
    page.screenshot(path=str(screenshot_dir / "passkeys-refused.png"), full_page=True)
    failure = last_event("sign_in_failed")
    assert failure.context["refusal"] == "sign_counter" and failure.subject_user_id == erin.pk

    # The key itself, after its user was deactivated: refused as a password would be.
    empty, _ = authenticators.hide(empty)
    type(erin).objects.filter(pk=erin.pk).update(allow_login=False)
    page.reload()
    offer_ended(page)
    authenticators.copy(credential, empty, sign_count=100)
    page.get_by_role("button", name="Sign in with a passkey").click()
    page.get_by_role("alert").wait_for()
    assert page.url == f"{base}/sign-in/"
    failure = last_event("sign_in_failed")
    assert failure.context["reason"] == "login_disabled"


def test_the_phishing_resistant_rule_and_the_administrators_view(page, base, owner, screenshot_dir):
    set_policy(owner, require_phishing_resistant=True)
    make_user(
        owner,
        username="sam",
        first_name="Sam",
        last_name="Support",
        grants={
            catalog.DP_ACCESS: catalog.FULL,
            catalog.USERS: catalog.FULL,
            catalog.PARAMETERS: catalog.FULL,
        },
        privilege_level=9,
    )
    authenticators = VirtualAuthenticators(page)
    authenticators.add()

    sign_in_with_password(page, base, "sam")
    page.wait_for_url(f"{base}/me/two-factor/passkeys/add/")  # before anything else
    page.goto(f"{base}/users/")
    page.wait_for_url(f"{base}/me/two-factor/passkeys/add/")
    assert page.get_by_text("Your organisation requires a passkey").is_visible()
    page.screenshot(path=str(screenshot_dir / "passkeys-required.png"), full_page=True)
    page.get_by_label("Name").fill("Sam's phone")
    page.get_by_role("button", name="Add a passkey").click()
    page.wait_for_url(f"{base}/me/two-factor/")
    page.goto(f"{base}/users/")
    assert page.url == f"{base}/users/"

    # The administrator's view of someone's authenticators, and a revocation.
    alice = make_user(owner, username="alice", first_name="Alice", last_name="Lost")
    enrol(alice, SoftAuthenticator(origin=base), name="Alice's YubiKey")
    page.goto(f"{base}/users/{alice.pk}/security/")
    panel = page.get_by_role("region", name="Authenticators")
    assert panel.get_by_role("rowheader", name="Alice's YubiKey").is_visible()
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "passkeys-security-tab.png"), full_page=True)
    panel.get_by_role("link", name="Revoke").click()
    page.get_by_label("Reason").fill("Ticket 4711: key lost on a train")
    page.screenshot(path=str(screenshot_dir / "passkeys-revoke.png"), full_page=True)
    page.get_by_role("button", name="Revoke").click()
    page.wait_for_url(f"{base}/users/{alice.pk}/security/")
    assert alice.webauthncredential_set.count() == 0
    revoked = last_event("authenticator_revoked")
    assert revoked.reason == "Ticket 4711: key lost on a train" and revoked.context["last"]

    page.goto(f"{base}/settings/password-policy/")
    section = page.get_by_role("region", name="Passkeys and sign-in alerts")
    section.get_by_label("Allow passwordless sign-in with a passkey").check()
    section.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshot_dir / "passkeys-policy.png"))
