"""API tokens: create, revoke and authenticate, each with its audit event.

A token reads `ba_<prefix>_<secret>`; how it is issued, hashed and checked is shared with the
SCIM tokens (`accounts.tokens.lifecycle`).

A token never exceeds its user: its reach is computed at each request from the user's current
API-channel permissions, narrowed by the token's own scope, so a later loss is felt at once.
"""

from __future__ import annotations

import datetime
import ipaddress
import logging
from collections.abc import Iterable

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import connection
from django.http import Http404
from django.utils import timezone

from roles import catalog, guards, permissions
from roles.guards import EscalationRefused
from roles.resolver import EffectivePermissions

from ..choices import UserKind
from . import lifecycle
from .models import ApiToken

logger = logging.getLogger(__name__)

TOKEN_PATTERN = lifecycle.text_pattern(ApiToken.KIND)
MAX_NETWORKS = 20


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
    reason: str,
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
    name_error = lifecycle.name_error(
        name, missing="Give the token a name that says where it is used."
    )
    if name_error:
        errors["name"] = name_error
    expiry_error = lifecycle.expiry_error(expires_at, owner=user.owner, now=now)
    if expiry_error:
        errors["expires_at"] = expiry_error
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

    return lifecycle.issue(
        ApiToken,
        actor=actor,
        reason=reason,
        now=now,
        audited=lambda token: {
            "owner": user.owner,
            "subject_user": user,
            "context": _scope_context(token),
        },
        user=user,
        name=name,
        read_only=read_only,
        areas=areas,
        allowed_networks=networks,
        expires_at=expires_at,
    )


def revoke_token(token: ApiToken, *, actor, reason: str, now=None) -> None:
    """Revoke a token at once: its next request answers 401. Revoking twice is refused."""
    if actor.pk != token.user_id and not _administers_owner(actor, token):
        if actor.owner_id != token.user.owner_id and not actor.is_superuser:
            raise Http404("Not found.")
        raise PermissionDenied("You cannot revoke this token.")
    lifecycle.revoke(
        token,
        actor=actor,
        reason=reason,
        now=now or timezone.now(),
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
    lifecycle.record_refusal(
        token,
        key=f"token-refused:{token.pk}:{reason}",
        label=f"API token {token.display_prefix}",
        reason=TokenRefused.LABELS[reason],
        owner=token.user.owner,
        subject_user=token.user,
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
    # The prefix is unique: no ORDER BY to build (`first()` would add one on every request).
    token = next(
        iter(ApiToken.objects.select_related("user__owner").filter(prefix=prefix).order_by()[:1]),
        None,
    )
    if token is None:
        logger.info("Refused an API token with unknown prefix %s.", prefix)
        raise TokenRefused(TokenRefused.UNKNOWN)
    if not token.secret_matches(secret):
        raise _refuse(token, TokenRefused.WRONG_SECRET, now)
    if token.revoked_at is not None:
        raise _refuse(token, TokenRefused.REVOKED, now)
    if token.expires_at <= now:
        raise _refuse(token, TokenRefused.EXPIRED, now)
    if not may_use_api(token.user):
        raise _refuse(token, TokenRefused.NO_API_ACCESS, now)
    if not _ip_allowed(ip, token.allowed_networks):
        raise _refuse(token, TokenRefused.NETWORK, now)
    lifecycle.mark_used(token, now)
    return token


# The decision endpoints' tokens, remembered by this process (see `authenticate_remembered`):
# (prefix, SHA-256 of the secret) -> (token with its user and owner, the facts read with them).
_REMEMBERED_SIZE = 1024
_remembered: dict[tuple[str, str], tuple[ApiToken, tuple]] = {}
_facts_sql: str | None = None


def _facts_of(token: ApiToken) -> tuple:
    """Return what decides a token's use and its reach, as `_FACTS_SQL` reads it (but the last
    column, `last_used_at`, which is only written)."""
    user, owner = token.user, token.user.owner
    return (
        token.revoked_at,
        token.expires_at,
        user.allow_api_read,
        user.allow_api_write,
        user.allow_login,
        user.kind,
        user.permissions_version,
        user.row_version,
        user.privilege_level,
        user.is_superuser,
        user.owner_id,
        owner.authz_epoch,
        owner.data_protection_min_privilege,
    )


def _read_facts(token_id: int):
    """Read `_facts_of` a token from the database: one small query, no ORM to build."""
    global _facts_sql
    if _facts_sql is None:
        user_model = ApiToken._meta.get_field("user").related_model
        owner_model = user_model._meta.get_field("owner").related_model
        q = connection.ops.quote_name
        user_columns = (
            "allow_api_read",
            "allow_api_write",
            "allow_login",
            "kind",
            "permissions_version",
            "row_version",
            "privilege_level",
            "is_superuser",
            "owner_id",
        )
        columns = [
            "t.revoked_at",
            "t.expires_at",
            *(f"u.{q(user_model._meta.get_field(name).column)}" for name in user_columns),
            "o.authz_epoch",
            "o.data_protection_min_privilege",
            "t.last_used_at",
        ]
        # Identifiers from the models' metadata, quoted; the token's id is a parameter.
        _facts_sql = (
            f"SELECT {', '.join(columns)} FROM {q(ApiToken._meta.db_table)} t"  # noqa: S608
            f" JOIN {q(user_model._meta.db_table)} u ON u.id = t.user_id"
            f" JOIN {q(owner_model._meta.db_table)} o ON o.id = u.owner_id"
            " WHERE t.id = %s"
        )
    with connection.cursor() as cursor:
        cursor.execute(_facts_sql, [token_id])
        return cursor.fetchone()


def authenticate_remembered(raw: str, *, ip: str | None, now=None) -> ApiToken:
    """Return the live token for a bearer string, as `authenticate` does, without loading it
    again while nothing that decides its use has changed.

    For the decision endpoints, which a busy service calls on every request of its own. The
    token, its user and owner are kept in this process's memory under the token's prefix and
    the SHA-256 of its secret (the presented secret must hash to what was verified). Each
    request still reads, in one small query, the facts they were checked on: revocation,
    expiry, the user's API and Login flags, kind, permissions and row versions, privilege level,
    owner and the owner's authorization epoch. Any difference, a missing row, an expiry passed
    or an address outside the token's networks goes through `authenticate` again, which
    refuses and audits as ever; a revocation or a lost flag is felt at the next request. Its
    use is recorded as `authenticate` does (at most once a minute).

    On other databases than PostgreSQL this is `authenticate` (their raw values, such as
    SQLite's text dates, do not compare with the model's).
    """
    if connection.vendor != "postgresql":
        return authenticate(raw, ip=ip, now=now)
    now = now or timezone.now()
    match = TOKEN_PATTERN.match(raw or "")
    if match is None:
        raise TokenRefused(TokenRefused.MALFORMED)
    key = (match.group(1), lifecycle.hash_secret(match.group(2)))
    remembered = _remembered.pop(key, None)
    if remembered is not None:
        token, facts = remembered
        row = _read_facts(token.pk)
        if (
            row is not None
            and tuple(row[:-1]) == facts
            and token.expires_at > now
            and _ip_allowed(ip, token.allowed_networks)
        ):
            token.last_used_at = row[-1]  # another process may have recorded a use since
            lifecycle.mark_used(token, now)
            _remembered[key] = remembered
            return token
    token = authenticate(raw, ip=ip, now=now)
    if len(_remembered) >= _REMEMBERED_SIZE:
        _remembered.clear()
    _remembered[key] = (token, _facts_of(token))
    return token
