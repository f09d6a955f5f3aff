"""API tokens: create, revoke and authenticate, each with its audit event.

A token reads `ba_<prefix>_<secret>`. The prefix is stored as is (it finds the row and lets people
recognise a token); the 32-byte random secret only as its SHA-256, which is the right hash for a
high-entropy secret (no stretching needed) and is compared in constant time.

A token never exceeds its user: its reach is computed at each request from the user's current
API-channel permissions, narrowed by the token's own scope, so a later loss is felt at once.
"""

from __future__ import annotations

import datetime
import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
from collections.abc import Iterable

from django.core.cache import cache
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404
from django.utils import timezone

import audit
from audit.choices import AuditAction
from roles import catalog, guards, permissions
from roles.guards import EscalationRefused
from roles.resolver import EffectivePermissions

from .choices import UserKind
from .token_models import ApiToken

logger = logging.getLogger(__name__)

TOKEN_PATTERN = re.compile(r"^ba_([a-z0-9]{8})_([A-Za-z0-9_-]{43})$")
DEFAULT_MAX_DAYS = 365
MAX_NETWORKS = 20
LAST_USED_RESOLUTION = datetime.timedelta(minutes=1)
REFUSAL_AUDIT_SECONDS = 60


class TokenRefused(Exception):
    """A bearer token was refused; `reason` is for the audit log, never for the caller."""

    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    WRONG_SECRET = "wrong_secret"
    REVOKED = "revoked"
    EXPIRED = "expired"
    NO_API_ACCESS = "no_api_access"
    NETWORK = "network"

    LABELS = {
        MALFORMED: "Not a token of this portal",
        UNKNOWN: "No token with this prefix",
        WRONG_SECRET: "Wrong secret for the prefix",
        REVOKED: "Token revoked",
        EXPIRED: "Token expired",
        NO_API_ACCESS: "User has no API access (flag removed or deactivated)",
        NETWORK: "Request from outside the token's allowed networks",
    }

    def __init__(self, reason: str):
        super().__init__(self.LABELS.get(reason, reason))
        self.reason = reason


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def max_days(owner) -> int:
    """Return the longest token lifetime the owner's policy allows, in days."""
    policy = getattr(owner, "password_policy", None)
    try:
        return policy.max_token_days if policy is not None else DEFAULT_MAX_DAYS
    except Exception:  # noqa: BLE001 - no policy row yet: the product default
        return DEFAULT_MAX_DAYS


def may_use_api(user) -> bool:
    """Say whether a user may use the API at all: an API flag, and not deactivated."""
    if not (user.allow_api_read or user.allow_api_write):
        return False
    return user.kind == UserKind.API or user.allow_login


def administers_tokens(actor) -> bool:
    """Say whether the actor may see and manage the tokens of others (full on Users)."""
    return actor.is_superuser or permissions.for_user(actor).has(catalog.USERS, catalog.FULL)


def can_manage_tokens_of(actor, user) -> bool:
    """Say whether `actor` may create and revoke tokens of `user`."""
    if actor.owner_id != user.owner_id and not actor.is_superuser:
        return False
    if actor.pk == user.pk:
        return may_use_api(user)
    return user.kind == UserKind.API and administers_tokens(actor)


def clean_networks(values: Iterable[str]) -> list[str]:
    """Return the CIDRs normalised (host bits cleared); ValidationError names a bad one."""
    networks = []
    for raw in values:
        text = str(raw).strip()
        if not text:
            continue
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise ValidationError(
                {"allowed_networks": f"{text[:60]} is not an IP address or network (CIDR)."}
            ) from exc
        if str(network) not in networks:
            networks.append(str(network))
    if len(networks) > MAX_NETWORKS:
        raise ValidationError({"allowed_networks": f"List at most {MAX_NETWORKS} networks."})
    return networks


def narrow(user_permissions: EffectivePermissions, *, read_only: bool, areas) -> dict[str, str]:
    """Return the levels a token of this scope reaches, given its user's API permissions."""
    levels = {}
    for code, level in user_permissions.levels.items():
        if areas and code not in areas:
            continue
        if read_only and level == catalog.WRITE:
            level = catalog.READ
        levels[code] = level
    return levels


def effective_permissions(token: ApiToken, *, now=None) -> EffectivePermissions:
    """Return what the token may do now: its user's API permissions narrowed by its scope."""
    held = permissions.for_user(token.user, catalog.Channel.API, now=now)
    return EffectivePermissions(
        channel=catalog.Channel.API,
        levels=narrow(held, read_only=token.read_only, areas=token.areas),
        expires_at=held.expires_at,
    )


def _scope_context(token: ApiToken) -> dict:
    return {
        "prefix": token.prefix,
        "name": token.name,
        "expires_at": token.expires_at.isoformat(),
        "read_only": token.read_only,
        "areas": list(token.areas),
        "allowed_networks": list(token.allowed_networks),
    }


def create_token(
    user,
    *,
    actor,
    name: str,
    expires_at: datetime.datetime,
    read_only: bool = False,
    areas: Iterable[str] = (),
    allowed_networks: Iterable[str] = (),
    now=None,
) -> tuple[ApiToken, str]:
    """Create a token for `user` and return it with its full text, which is never kept.

    The actor is the user themselves (with API access) or an administrator (full on Users) for
    an API user. The expiry is required, at most the owner's `max_token_days` away. A scope
    that asks for an area the user does not hold is refused, and an administrator cannot hand
    out more than they could grant themselves.
    """
    now = now or timezone.now()
    if not can_manage_tokens_of(actor, user):
        if actor.owner_id != user.owner_id and not actor.is_superuser:
            raise Http404("Not found.")
        raise PermissionDenied("You cannot create tokens for this user.")
    errors = {}
    name = (name or "").strip()
    if not name:
        errors["name"] = "Give the token a name that says where it is used."
    elif len(name) > 120:
        errors["name"] = "Use at most 120 characters."
    longest = max_days(user.owner)
    if expires_at is None or expires_at <= now:
        errors["expires_at"] = "Choose an expiry in the future."
    elif expires_at > now + datetime.timedelta(days=longest, minutes=1):
        errors["expires_at"] = f"A token may live at most {longest} days in this organisation."
    areas = list(dict.fromkeys(areas or ()))
    api_codes = {a.code for a in catalog.areas_for(catalog.Channel.API)}
    unknown = [code for code in areas if code not in api_codes]
    if unknown:
        errors["areas"] = f"Unknown API areas: {', '.join(sorted(unknown))[:200]}."
    if errors:
        raise ValidationError(errors)
    networks = clean_networks(allowed_networks or ())
    if not may_use_api(user):
        raise ValidationError(f"{user.label} has no API access, so a token would not work.")
    held = permissions.for_user(user, catalog.Channel.API, now=now)
    missing = [code for code in areas if not held.has(code, catalog.READ)]
    if missing:
        labels = ", ".join(catalog.get(code).label for code in missing)
        raise EscalationRefused(
            f"A token cannot reach more than its user: {user.label} holds no access to {labels}."
        )
    reach = narrow(held, read_only=read_only, areas=areas)
    if actor.pk != user.pk:
        guards.check_can_manage_user(actor, user)
        guards.check_can_grant(actor, reach)

    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        prefix = free_prefix()
        token = ApiToken.objects.create(
            user=user,
            name=name,
            prefix=prefix,
            secret_hash=hash_secret(secret),
            read_only=read_only,
            areas=areas,
            allowed_networks=networks,
            created_at=now,
            created_by=actor,
            expires_at=expires_at,
        )
        audit.record(
            AuditAction.TOKEN_CREATED,
            actor=actor,
            target=token,
            owner=user.owner,
            subject_user=user,
            context=_scope_context(token),
        )
    return token, f"ba_{prefix}_{secret}"


def free_prefix(model=None) -> str:
    """Return a random visible prefix no token of `model` (API tokens by default) uses yet."""
    model = model or ApiToken
    for _ in range(10):
        prefix = secrets.token_hex(4)
        if not model.objects.filter(prefix=prefix).exists():
            return prefix
    raise RuntimeError("Could not find a free token prefix.")  # pragma: no cover


def revoke_token(token: ApiToken, *, actor, now=None) -> None:
    """Revoke a token at once: its next request answers 401. Revoking twice is refused."""
    if actor.pk != token.user_id and not _administers_owner(actor, token):
        if actor.owner_id != token.user.owner_id and not actor.is_superuser:
            raise Http404("Not found.")
        raise PermissionDenied("You cannot revoke this token.")
    now = now or timezone.now()
    with transaction.atomic():
        updated = ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=actor
        )
        if not updated:
            raise ValidationError("This token is already revoked.")
        token.refresh_from_db(fields=["revoked_at", "revoked_by"])
        audit.record(
            AuditAction.TOKEN_REVOKED,
            actor=actor,
            target=token,
            owner=token.user.owner,
            subject_user=token.user,
            context={"prefix": token.prefix, "name": token.name},
        )


def _administers_owner(actor, token: ApiToken) -> bool:
    """An administrator may revoke any token of their owner (also an interactive user's)."""
    same_owner = actor.is_superuser or actor.owner_id == token.user.owner_id
    return same_owner and administers_tokens(actor)


def _ip_allowed(ip: str | None, networks: list[str]) -> bool:
    if not networks:
        return True
    try:
        address = ipaddress.ip_address(ip or "")
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(net, strict=False) for net in networks)


def _refuse(token: ApiToken, reason: str, now) -> TokenRefused:
    """Audit a refusal of a known token, at most once a minute per token and reason."""
    if cache.add(f"token-refused:{token.pk}:{reason}", 1, REFUSAL_AUDIT_SECONDS):
        with transaction.atomic():
            audit.record(
                AuditAction.TOKEN_REFUSED,
                actor=None,
                actor_label=f"API token {token.display_prefix}",
                target=token,
                owner=token.user.owner,
                subject_user=token.user,
                reason=TokenRefused.LABELS[reason],
                method="api_token",
                context={"reason": reason, "prefix": token.prefix},
            )
    return TokenRefused(reason)


def authenticate(raw: str, *, ip: str | None, now=None) -> ApiToken:
    """Return the live token for a bearer string, or raise TokenRefused with the exact reason.

    The token's user and owner come along in the same query; `last_used_at` is written at most
    once a minute so that busy integrations do not cost a write per request.
    """
    now = now or timezone.now()
    match = TOKEN_PATTERN.match(raw or "")
    if match is None:
        raise TokenRefused(TokenRefused.MALFORMED)
    prefix, secret = match.groups()
    token = ApiToken.objects.select_related("user__owner").filter(prefix=prefix).first()
    if token is None:
        logger.info("Refused an API token with unknown prefix %s.", prefix)
        raise TokenRefused(TokenRefused.UNKNOWN)
    if not hmac.compare_digest(token.secret_hash, hash_secret(secret)):
        raise _refuse(token, TokenRefused.WRONG_SECRET, now)
    if token.revoked_at is not None:
        raise _refuse(token, TokenRefused.REVOKED, now)
    if token.expires_at <= now:
        raise _refuse(token, TokenRefused.EXPIRED, now)
    if not may_use_api(token.user):
        raise _refuse(token, TokenRefused.NO_API_ACCESS, now)
    if not _ip_allowed(ip, token.allowed_networks):
        raise _refuse(token, TokenRefused.NETWORK, now)
    if token.last_used_at is None or now - token.last_used_at >= LAST_USED_RESOLUTION:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token
