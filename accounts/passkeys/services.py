"""Passkeys and security keys: add, sign in (second step or passwordless), step up, remove, revoke.

Each action checks its rules, changes the rows and writes its audit event in one transaction;
a refused ceremony is recorded (PASSKEY_REFUSED, with the exact reason) once nothing of it
remains, and a refusal of a response made with a known credential counts towards the account's
lockout like a wrong code.

Passwordless sign-in passes the gates of a password sign-in, in the same order and with the same
audit: a locked account, a user of the identity provider, an API user, no Login flag, an owner
whose policy does not allow it, and the user's sign-in restrictions (networks, hours) each refuse
it with one generic message; the audit log keeps the exact reason. Accepted, it starts the session
through `accounts.services.record_sign_in` like any other sign-in (new session key, session
rules, lockout cleared, SIGN_IN, the new-device signal) and counts as both factors.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.http import Http404
from django.shortcuts import resolve_url
from django.urls import reverse
from django.utils.http import urlencode

import audit
from audit import context as audit_context
from audit.choices import AuditAction
from portal import stepup
from portal.reasons import required_reason
from security import lockout
from security import services as security_services
from security.choices import SignInFailure
from security.services import password_expired

from .. import services as account_services
from ..backends import restriction_refusal
from ..choices import AuthSource, UserKind
from ..takeover import services as takeover
from ..twofactor import services as twofactor
from ..twofactor.models import TOTPDevice
from . import ceremony, policy
from .ceremony import PasskeyRefused, Purpose, Reason

NAME_MAX = 64  # django-otp's device name
GENERIC_SIGN_IN_REFUSAL = (
    "That passkey could not sign you in. Sign in with your password, or try another passkey."
)
LOCKED = "Too many failed attempts: sign-in is paused for this account. Try again later."
PENDING_EXPIRED = "Your sign-in was not finished in time. Sign in again."
METHOD_PASSWORDLESS = "passkey"
SECOND_FACTOR = "passkey"

APP = "app"
PASSKEY = "passkey"
SECURITY_KEY = "security_key"
KIND_LABELS = {APP: "Authenticator app", PASSKEY: "Passkey", SECURITY_KEY: "Security key"}
TRANSPORT_LABELS = {
    "internal": "built in",
    "hybrid": "phone nearby",
    "usb": "USB",
    "nfc": "NFC",
    "ble": "Bluetooth",
    "smart-card": "smart card",
}
_KEY_TRANSPORTS = {"usb", "nfc", "ble", "smart-card"}


class SignInRefused(Exception):
    """A passkey sign-in was refused; `message` is generic and safe to show."""

    def __init__(self, message: str = GENERIC_SIGN_IN_REFUSAL, *, status: int = 400):
        self.message = message
        self.status = status
        super().__init__(message)


# Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authenticator:
    """One way a person proves the second factor, as the screens list it."""

    kind: str  # APP, PASSKEY or SECURITY_KEY
    pk: int
    name: str
    created_at: object
    last_used_at: object
    transports: tuple[str, ...] = ()
    synced: bool = False

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]

    @property
    def url_kind(self) -> str:
        return APP if self.kind == APP else PASSKEY

    @property
    def transports_label(self) -> str:
        return ", ".join(TRANSPORT_LABELS.get(t, t) for t in self.transports)


def kind_of(credential) -> str:
    """Say whether a credential is a passkey (synced, or on a phone or computer) or a key."""
    transports = set(credential.transports or [])
    if credential.backup_eligible or transports & {"internal", "hybrid"}:
        return PASSKEY
    return SECURITY_KEY if transports & _KEY_TRANSPORTS else PASSKEY


def passkeys_of(user):
    return policy.credentials().filter(user_id=user.pk, confirmed=True).order_by("created_at", "pk")


def authenticators_of(user) -> list[Authenticator]:
    """Return the person's authenticator app and passkeys, oldest first (2 queries)."""
    found = []
    app = TOTPDevice.objects.filter(user_id=user.pk, confirmed=True).first()
    if app is not None:
        found.append(Authenticator(APP, app.pk, app.name, app.confirmed_at, app.last_used_at))
    for credential in passkeys_of(user):
        found.append(
            Authenticator(
                kind_of(credential),
                credential.pk,
                credential.name,
                credential.created_at,
                credential.last_used_at,
                tuple(credential.transports or ()),
                bool(credential.backup_eligible),
            )
        )
    return found


def default_name() -> str:
    """Name a new passkey after the browser adding it ("Chrome on Linux")."""
    return takeover.device_family(audit_context.current().user_agent) or "Passkey"


def clean_name(value) -> str:
    name = " ".join(str(value or "").split())[:NAME_MAX]
    return name or default_name()


def _described(credential) -> dict:
    return {
        "name": credential.name,
        "kind": kind_of(credential),
        "transports": list(credential.transports or []),
        "id_digest": credential.credential_id_sha256[:16],
    }


# Refusals ----------------------------------------------------------------------------------


def record_refusal(exc: PasskeyRefused, *, stage: str, user=None) -> bool:
    """Record a refused ceremony; count it towards `user`'s lockout when a known credential
    failed its checks. Return whether the account is locked now.

    `stage` is registration, sign_in (the second step), passwordless or step_up. A refused
    passwordless sign-in is a failed sign-in (SIGN_IN_FAILED, as for a wrong password, the
    passkey's reason beside it); the others are PASSKEY_REFUSED.
    """
    known = exc.credential
    # Keys the audit log keeps (it redacts names like "passkey" or "credential" as secrets).
    context: dict[str, object] = {"stage": stage, "refusal": exc.reason}
    if exc.detail:
        context["detail"] = exc.detail
    if known is not None:
        context["id_digest"] = known.credential_id_sha256[:16]
        if user is not None and known.user_id != user.pk:
            context["of_another_user"] = True
    signed_in = stage in {"registration", "step_up"}
    action, reason = AuditAction.PASSKEY_REFUSED, exc.label
    if stage == "passwordless":
        failure = SignInFailure.PASSKEY_REFUSED if known else SignInFailure.UNKNOWN_PASSKEY
        action = AuditAction.SIGN_IN_FAILED
        reason = f"{SignInFailure.LABELS[failure]}: {exc.label}"
        context["reason"] = failure
    with transaction.atomic():
        audit.record(
            action,
            actor=user if signed_in else None,
            actor_label="" if signed_in else getattr(user, "username", "(passkey)"),
            target=user,
            owner=getattr(user, "owner", None),
            subject_user=user,
            reason=reason,
            method="passkey",
            context=context,
        )
    if user is None or stage == "registration" or exc.reason not in Reason.COUNTED:
        return False
    return lockout.register_failure(None, user, f"passkey_{exc.reason}")


# Registration ------------------------------------------------------------------------------


def begin_registration(request, user) -> dict:
    return ceremony.begin_registration(request, user)


def add_passkey(request, user, data: dict):
    """Save the passkey the browser just made for `user` (named by them); audit and notify."""
    name = clean_name(data.get("name"))
    try:
        state = ceremony.take(request, Purpose.REGISTER, user)
        with transaction.atomic():
            credential = ceremony.complete_registration(request, user, state, data, name=name)
            audit.record(
                AuditAction.PASSKEY_ADDED,
                actor=user,
                target=user,
                context={**_described(credential), "discoverable": credential.discoverable},
            )
            takeover.notify_change(
                user,
                takeover.Change.AUTHENTICATORS,
                actor=user,
                details=f'{KIND_LABELS[kind_of(credential)]} "{name}" added.',
            )
    except PasskeyRefused as exc:
        record_refusal(exc, stage="registration", user=user)
        raise
    return credential


def remove_own_passkey(user, pk: int) -> str:
    """Remove one of the person's own passkeys; return its name."""
    with transaction.atomic():
        credential = passkeys_of(user).select_for_update().filter(pk=pk).first()
        if credential is None:
            raise Http404("No such passkey.")
        described = _described(credential)
        credential.delete()
        audit.record(AuditAction.PASSKEY_REMOVED, actor=user, target=user, context=described)
        takeover.notify_change(
            user,
            takeover.Change.AUTHENTICATORS,
            actor=user,
            details=f'{KIND_LABELS[described["kind"]]} "{described["name"]}" removed.',
        )
    return described["name"]


@dataclass(frozen=True)
class Revoked:
    name: str
    kind_label: str
    sessions_ended: int
    was_last: bool


def revoke_authenticator(target, *, actor, kind: str, pk: int, reason: str) -> Revoked:
    """Revoke one authenticator of `target` (an app with its backup codes, or a passkey).

    Needs full Data Protection Access and the right to manage `target`, and a reason. When it
    was their last authenticator, every session of theirs ends: whoever was signed in with it
    proves who they are again.
    """
    reason = required_reason(reason, "Say why this authenticator is being revoked.")
    twofactor.check_support_rights(actor, target)
    with transaction.atomic():
        if kind == APP:
            device = TOTPDevice.objects.filter(user_id=target.pk, pk=pk, confirmed=True).first()
            if device is None:
                raise Http404("No such authenticator.")
            described = {"kind": APP, "name": device.name}
            twofactor.delete_app(target)
        elif kind == PASSKEY:
            credential = passkeys_of(target).select_for_update().filter(pk=pk).first()
            if credential is None:
                raise Http404("No such authenticator.")
            described = _described(credential)
            credential.delete()
        else:
            raise Http404("No such authenticator.")
        was_last = not twofactor.has_second_factor(target)
        ended = 0
        if was_last:
            ended = security_services.end_tracked_sessions(
                target, reason="Last authenticator revoked"
            )
        label = KIND_LABELS[described["kind"]]
        audit.record(
            AuditAction.AUTHENTICATOR_REVOKED,
            actor=actor,
            target=target,
            reason=reason,
            context={
                **described,
                "last": was_last,
                "sessions_ended": ended,
            },
        )
        takeover.notify_change(
            target,
            takeover.Change.AUTHENTICATORS,
            actor=actor,
            details=f'{label} "{described["name"]}" revoked'
            + ("; it was your last one, so every session of yours ended." if was_last else "."),
        )
    return Revoked(described["name"], label, ended, was_last)


# Signing in --------------------------------------------------------------------------------


def begin_sign_in(request, purpose: str) -> dict:
    """Start the second step (the pending user's credentials) or a passwordless sign-in."""
    if purpose == Purpose.SECOND_STEP:
        user = twofactor.pending_user(request)
        if user is None:
            raise SignInRefused(PENDING_EXPIRED)
        return ceremony.begin_authentication(request, Purpose.SECOND_STEP, user)
    if purpose == Purpose.PASSWORDLESS:
        return ceremony.begin_authentication(request, Purpose.PASSWORDLESS)
    raise SignInRefused("Unknown passkey request.")


def complete_second_step(request, data: dict) -> str:
    """Accept the pending user's passkey as the second step; start the session; return where
    to go next."""
    user = twofactor.pending_user(request)
    if user is None:
        raise SignInRefused(PENDING_EXPIRED)
    if lockout.is_locked(user):
        record_refusal(PasskeyRefused(Reason.LOCKED), stage="sign_in", user=user)
        raise SignInRefused(LOCKED)
    try:
        state = ceremony.take(request, Purpose.SECOND_STEP, user)
        ceremony.complete_authentication(request, state, data, user=user)
    except PasskeyRefused as exc:
        if record_refusal(exc, stage="sign_in", user=user):
            raise SignInRefused(LOCKED) from exc
        raise SignInRefused(exc.message, status=exc.status) from exc
    return twofactor.complete_sign_in(
        request, user, twofactor.SecondFactorResult(method=twofactor.METHOD_PASSKEY)
    )


def _passwordless_refusal(request, user) -> tuple[str, bool]:
    """Return why this user may not sign in with a passkey alone ('' when they may), and
    whether the refusal counts towards the lockout (as the same refusal of a right password)."""
    if lockout.is_locked(user):
        return SignInFailure.LOCKED_OUT, False
    if user.auth_source == AuthSource.SAML:
        return SignInFailure.SSO_MANAGED, True
    if user.kind == UserKind.API:
        return SignInFailure.API_USER, True
    if not user.allow_login:
        return SignInFailure.LOGIN_DISABLED, True
    if not policy.passwordless_allowed(user):
        return SignInFailure.PASSWORDLESS_NOT_ALLOWED, False
    refusal = restriction_refusal(request, user)
    if refusal:
        return refusal, refusal not in SignInFailure.NOT_COUNTED
    return "", False


def complete_passwordless(request, data: dict, *, next_url: str = "") -> str:
    """Sign a person in with a passkey alone, through the gates of a password sign-in; return
    where to go next (`next_url` already checked to stay on this site)."""
    try:
        state = ceremony.take(request, Purpose.PASSWORDLESS)
        credential = ceremony.complete_authentication(request, state, data)
    except PasskeyRefused as exc:
        user = exc.credential.user if exc.credential is not None else None
        record_refusal(exc, stage="passwordless", user=user)
        if exc.reason == Reason.OVERSIZED:
            raise SignInRefused(exc.message, status=exc.status) from exc
        raise SignInRefused() from exc
    user = credential.user
    reason, counted = _passwordless_refusal(request, user)
    if reason:
        account_services.record_sign_in_failure(
            user.username, reason, user, method=METHOD_PASSWORDLESS
        )
        if counted:
            lockout.register_failure(None, user, reason)
        raise SignInRefused()
    account_services.record_sign_in(
        request, user, method=METHOD_PASSWORDLESS, second_factor=SECOND_FACTOR
    )
    request.session[twofactor.VERIFIED_SESSION_KEY] = True
    stepup.mark_proof(request)
    target = next_url or resolve_url(settings.LOGIN_REDIRECT_URL)
    if password_expired(user):
        audit.record(AuditAction.PASSWORD_EXPIRED, actor=user, target=user)
        return reverse("security:password_change") + "?" + urlencode({"next": target})
    return target


# Step-up -----------------------------------------------------------------------------------


def begin_step_up(request, user) -> dict:
    if not policy.has_passkey(user):
        raise SignInRefused("You have no passkey yet. Confirm with your password instead.")
    return ceremony.begin_authentication(request, Purpose.STEP_UP, user)


@dataclass(frozen=True)
class StepUp:
    accepted: bool = False
    locked: bool = False
    message: str = ""
    status: int = 200


def complete_step_up(request, user, data: dict) -> StepUp:
    """Accept a passkey of the signed-in person, verified on the authenticator (PIN or
    biometrics), as a fresh proof of identity for a sensitive action."""
    if lockout.is_locked(user):
        return StepUp(locked=True)
    try:
        state = ceremony.take(request, Purpose.STEP_UP, user)
        credential = ceremony.complete_authentication(request, state, data, user=user)
    except PasskeyRefused as exc:
        locked = record_refusal(exc, stage="step_up", user=user)
        return StepUp(locked=locked, message=exc.message, status=exc.status)
    stepup.mark_proof(request)
    with transaction.atomic():
        audit.record(
            AuditAction.STEP_UP,
            actor=user,
            target=user,
            method="passkey",
            context={"second_factor": SECOND_FACTOR, "name": credential.name},
        )
    return StepUp(accepted=True)
