"""The WebAuthn exchange: options out, one signed response back, checked once.

`begin_*` asks django-otp-webauthn's helper for the options the browser needs and keeps the
challenge in the session with its purpose, the user it is for and when it began. `complete_*`
takes the challenge out of the session before anything else (so a response is accepted at most
once, whatever happens next) and has py_webauthn check the response: challenge, origin, RP ID,
user presence and verification, signature, and the sign counter that exposes a cloned
authenticator.

Everything the browser sends is untrusted. A body over `MAX_BODY_BYTES`, JSON that is not an
object, a response py_webauthn refuses, a credential that is unknown, another user's or already
registered: each is a `PasskeyRefused` carrying the exact reason (for the audit log) and a plain
message (for the person), never an exception the person sees as a server error.
"""

from __future__ import annotations

import hashlib
import json
import logging
from contextlib import contextmanager

from django.contrib.sessions.backends.base import UpdateError
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_otp_webauthn.helpers import WebAuthnHelper
from django_otp_webauthn.utils import get_credential_model
from webauthn import (
    base64url_to_bytes,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import ResidentKeyRequirement

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # an attestation with a certificate chain is a few kilobytes
MAX_CREDENTIAL_BYTES = 1023  # WebAuthn level 3's limit on a credential id; also the key's
STATE_KEY = "passkey_ceremony"
STATE_SECONDS = 5 * 60  # the browser's timeout (OTP_WEBAUTHN_TIMEOUT_SECONDS)


class Purpose:
    """What a ceremony is for; a response answers only a ceremony of its own purpose."""

    REGISTER = "register"
    SECOND_STEP = "second_step"
    PASSWORDLESS = "passwordless"
    STEP_UP = "step_up"
    # The user proves presence and verification (PIN, biometrics) on the authenticator.
    USER_VERIFIED = frozenset({PASSWORDLESS, STEP_UP})


class Reason:
    """Why a response was refused: kept in the audit log, never shown as such."""

    OVERSIZED = "oversized"
    MALFORMED = "malformed"
    NO_CEREMONY = "no_ceremony"
    CHALLENGE = "challenge_mismatch"
    ORIGIN = "wrong_origin"
    RP_ID = "wrong_rp_id"
    SIGN_COUNT = "sign_counter"
    SIGNATURE = "bad_signature"
    USER_VERIFICATION = "not_user_verified"
    UNSUPPORTED = "unsupported_authenticator"
    UNKNOWN_CREDENTIAL = "unknown_credential"
    OTHER_USER = "credential_of_another_user"
    ALREADY_REGISTERED = "already_registered"
    LOCKED = "locked_out"

    LABELS = {
        OVERSIZED: "Response too large",
        MALFORMED: "Malformed response",
        NO_CEREMONY: "No ceremony in progress (expired, already used, or a replay)",
        CHALLENGE: "Challenge not the one issued (a replayed response)",
        ORIGIN: "Wrong origin",
        RP_ID: "Wrong RP ID",
        SIGN_COUNT: "Sign counter did not increase (a cloned authenticator or a replay)",
        SIGNATURE: "Signature did not verify",
        USER_VERIFICATION: "The authenticator did not verify the user",
        UNSUPPORTED: "Unsupported authenticator or key",
        UNKNOWN_CREDENTIAL: "Credential not registered",
        OTHER_USER: "Credential registered to another user",
        ALREADY_REGISTERED: "Credential already registered",
        LOCKED: "Locked out",
    }
    # Refusals of a response made with a known credential that failed its checks: they count
    # towards the account's lockout like a wrong code.
    COUNTED = frozenset({CHALLENGE, ORIGIN, RP_ID, SIGN_COUNT, SIGNATURE, OTHER_USER})


MESSAGES = {
    Reason.OVERSIZED: "That response is too large to come from a passkey. Nothing was changed.",
    Reason.MALFORMED: "Your browser sent a response that is not a valid passkey response. "
    "Try again.",
    Reason.NO_CEREMONY: "This passkey request has expired or was already used. Try again.",
    Reason.CHALLENGE: "That passkey response does not answer this request. Try again.",
    Reason.ORIGIN: "That passkey response was made for another site. Try again from this page.",
    Reason.RP_ID: "That passkey belongs to another site. Use a passkey made for this portal.",
    Reason.SIGN_COUNT: "This passkey was refused: its use counter went backwards, a sign that "
    "the authenticator may have been copied. Contact your administrator.",
    Reason.SIGNATURE: "The passkey could not be verified. Try again.",
    Reason.USER_VERIFICATION: "Your authenticator did not confirm it is you (PIN or "
    "fingerprint). Try again and unlock it when asked.",
    Reason.UNSUPPORTED: "This authenticator is not supported. Use another passkey or security key.",
    Reason.UNKNOWN_CREDENTIAL: "This passkey is not registered here.",
    Reason.OTHER_USER: "This passkey is not registered to your account.",
    Reason.ALREADY_REGISTERED: "This passkey is already registered here. Use another "
    "authenticator.",
    Reason.LOCKED: "Too many failed attempts: sign-in is paused for this account. Try again later.",
}


class PasskeyRefused(Exception):
    """A ceremony's response was refused; `message` is plain and safe to show."""

    def __init__(self, reason: str, *, credential=None, detail: str = "", message: str = ""):
        self.reason = reason
        self.message = message or MESSAGES.get(reason, MESSAGES[Reason.MALFORMED])
        self.credential = credential  # the known credential it named, when there was one
        self.detail = detail[:200]
        super().__init__(f"{reason}: {detail}" if detail else reason)

    @property
    def status(self) -> int:
        return 413 if self.reason == Reason.OVERSIZED else 400

    @property
    def label(self) -> str:
        return Reason.LABELS.get(self.reason, self.reason)


def _reason_of(exc: Exception) -> str:
    """Name the check a py_webauthn refusal failed, from its message."""
    text = str(exc).lower()
    if "challenge" in text:
        return Reason.CHALLENGE
    if "origin" in text:
        return Reason.ORIGIN
    if "rp id" in text:
        return Reason.RP_ID
    if "sign count" in text:
        return Reason.SIGN_COUNT
    if "user verification" in text or "not verified" in text:
        return Reason.USER_VERIFICATION
    if "signature" in text:
        return Reason.SIGNATURE
    if "algorithm" in text or "unsupported" in text:
        return Reason.UNSUPPORTED
    return Reason.MALFORMED


@contextmanager
def _refusals(credential=None):
    """Turn what parsing and checking an untrusted response can raise into PasskeyRefused."""
    try:
        yield
    except PasskeyRefused:
        raise
    except WebAuthnException as exc:
        raise PasskeyRefused(_reason_of(exc), credential=credential, detail=str(exc)) from exc
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        # A response shaped so oddly that the parsers trip over it: malformed, never a 500.
        logger.info("Malformed WebAuthn response: %s: %s", type(exc).__name__, exc)
        raise PasskeyRefused(Reason.MALFORMED, credential=credential, detail=str(exc)) from exc


class PortalWebAuthnHelper(WebAuthnHelper):
    """django-otp-webauthn's helper with the portal's choices (OTP_WEBAUTHN_HELPER_CLASS).

    Discoverable credentials are preferred, not required: a passkey (phone, laptop, password
    manager) is discoverable and so also signs people in without a password, while a security
    key with no room left for one still works as a second factor.
    """

    def get_discoverable_credentials_preference(self) -> ResidentKeyRequirement:
        return ResidentKeyRequirement.PREFERRED

    def get_credential_display_name(self, user) -> str:
        return f"{user.label} ({user.get_username()})"


def credential_digest(credential_id: bytes) -> str:
    return hashlib.sha256(credential_id).hexdigest()


# The request and the session -----------------------------------------------------------------


def read_json(request) -> dict:
    """Return the request's JSON object; refuse one too large or not an object."""
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise PasskeyRefused(Reason.MALFORMED, detail="Content-Length not a number") from None
    if length > MAX_BODY_BYTES:
        raise PasskeyRefused(Reason.OVERSIZED, detail=f"{length} bytes")
    try:
        body = request.body
    except RequestDataTooBig:
        raise PasskeyRefused(Reason.OVERSIZED, detail="over the upload limit") from None
    if len(body) > MAX_BODY_BYTES:
        raise PasskeyRefused(Reason.OVERSIZED, detail=f"{len(body)} bytes")
    if not body:
        return {}
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise PasskeyRefused(Reason.MALFORMED, detail="not JSON") from None
    if not isinstance(data, dict):
        raise PasskeyRefused(Reason.MALFORMED, detail="not a JSON object")
    return data


def _store(request, purpose: str, state: dict, user) -> None:
    request.session[STATE_KEY] = {
        "purpose": purpose,
        "challenge": state["challenge"],
        "uv": bool(state["require_user_verification"]),
        "user_id": getattr(user, "pk", None),
        "at": timezone.now().timestamp(),
    }


def take(request, purpose: str, user=None) -> dict:
    """Take the ceremony out of the session and check it is `purpose`'s, for `user`, in time.

    The session is saved at once, so the challenge can never answer twice, even when checking
    the response fails: call it outside any transaction that could roll the save back.
    """
    state = request.session.pop(STATE_KEY, None)
    try:
        request.session.save()
    except UpdateError:  # a parallel request signed in meanwhile and replaced this session
        request.session.modified = False
        raise PasskeyRefused(Reason.NO_CEREMONY, detail="session replaced") from None
    if not isinstance(state, dict) or state.get("purpose") != purpose:
        raise PasskeyRefused(Reason.NO_CEREMONY, detail="none for this purpose")
    age = timezone.now().timestamp() - float(state.get("at") or 0)
    if not 0 <= age <= STATE_SECONDS:
        raise PasskeyRefused(Reason.NO_CEREMONY, detail="expired")
    if state.get("user_id") != getattr(user, "pk", None):
        raise PasskeyRefused(Reason.NO_CEREMONY, detail="begun for another user")
    return state


def _payload(data: dict) -> dict:
    payload = data.get("credential")
    if not isinstance(payload, dict):
        raise PasskeyRefused(Reason.MALFORMED, detail="no credential object")
    return payload


# Registration ------------------------------------------------------------------------------


def begin_registration(request, user) -> dict:
    """Return the creation options for a new credential of `user` (their others excluded)."""
    options, state = PortalWebAuthnHelper(request).register_begin(user=user)
    _store(request, Purpose.REGISTER, state, user)
    return options


def complete_registration(request, user, state: dict, data: dict, *, name: str):
    """Check the browser's new credential against `state` (`take`n) and save it, named `name`.

    The caller holds the transaction and audits. Refused: a response that fails py_webauthn's
    checks, a credential id or key over the limits, and a credential already registered here
    (to this user or another).
    """
    payload = _payload(data)
    helper = PortalWebAuthnHelper(request)
    with _refusals():
        parsed = parse_registration_credential_json(payload)
        verified = verify_registration_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(state["challenge"]),
            expected_rp_id=helper.get_relying_party_domain(),
            expected_origin=helper.get_allowed_origins(),
            require_user_verification=state["uv"],
        )
    if (
        len(verified.credential_id) > MAX_CREDENTIAL_BYTES
        or len(verified.credential_public_key) > MAX_CREDENTIAL_BYTES
    ):
        raise PasskeyRefused(Reason.OVERSIZED, detail="credential id or key over 1023 bytes")
    Credential = get_credential_model()
    existing = Credential.objects.filter(
        credential_id_sha256=credential_digest(verified.credential_id)
    ).first()
    if existing is not None:
        reason = Reason.ALREADY_REGISTERED if existing.user_id == user.pk else Reason.OTHER_USER
        # Whoever it belongs to, the person is told only that it is registered here already.
        raise PasskeyRefused(
            reason,
            credential=existing,
            detail="credential id known",
            message=MESSAGES[Reason.ALREADY_REGISTERED],
        )
    with _refusals():
        device = helper.create_credential(user, verified, parsed, payload)
    device.name = name
    try:
        with transaction.atomic():
            device.save()
            helper.create_attestation(
                device, verified.attestation_object, parsed.response.client_data_json
            )
    except IntegrityError:  # registered at the same moment by a parallel request
        raise PasskeyRefused(Reason.ALREADY_REGISTERED, detail="unique digest") from None
    return device


# Authentication ----------------------------------------------------------------------------


def begin_authentication(request, purpose: str, user=None) -> dict:
    """Return the request options: `user`'s credentials listed, or none (discoverable)."""
    options, state = PortalWebAuthnHelper(request).authenticate_begin(
        user=user, require_user_verification=purpose in Purpose.USER_VERIFIED
    )
    _store(request, purpose, state, user)
    return options


def complete_authentication(request, state: dict, data: dict, user=None):
    """Check an assertion against `state` (`take`n); return its credential, counter moved on.

    With `user` (second step, step-up) the credential must be theirs; without (passwordless)
    the credential names its user. The credential row is locked while it is checked and its
    sign counter saved, so two responses can never both pass on the same count.
    """
    payload = _payload(data)
    with _refusals():
        parsed = parse_authentication_credential_json(payload)
    helper = PortalWebAuthnHelper(request)
    Credential = get_credential_model()
    with transaction.atomic():
        device = (
            Credential.objects.select_for_update(of=("self",))
            .select_related("user", "user__owner")
            .filter(credential_id_sha256=credential_digest(parsed.raw_id), confirmed=True)
            .first()
        )
        if device is None:
            raise PasskeyRefused(Reason.UNKNOWN_CREDENTIAL, detail="no such credential")
        if user is not None and device.user_id != user.pk:
            raise PasskeyRefused(Reason.OTHER_USER, credential=device)
        with _refusals(credential=device):
            verified = verify_authentication_response(
                credential=parsed,
                expected_challenge=base64url_to_bytes(state["challenge"]),
                expected_rp_id=helper.get_relying_party_domain(),
                expected_origin=helper.get_allowed_origins(),
                credential_public_key=bytes(device.public_key),
                credential_current_sign_count=device.sign_count,
                require_user_verification=state["uv"],
            )
        device.sign_count = verified.new_sign_count
        device.backup_state = verified.credential_backed_up
        device.set_last_used_timestamp(commit=False)
        device.save(update_fields=["sign_count", "backup_state", "last_used_at"])
    return device
