"""Plain functions that build test data: make_owner(), make_user(role=…), make_role_group()…"""

from __future__ import annotations

import itertools

from accounts.models import Department, Owner, UpdateReason, User
from roles.models import Grant, PermissionOverride, Role, RoleGroup

PASSWORD = "a long enough test passphrase"
_seq = itertools.count(1)


def make_owner(name: str | None = None, **fields) -> Owner:
    n = next(_seq)
    name = name or f"Owner {n}"
    return Owner.objects.create(name=name, slug=f"owner-{n}", **fields)


def make_role_group(
    owner: Owner, name: str | None = None, grants: dict | None = None, *, kind="application"
) -> RoleGroup:
    group = RoleGroup.objects.create(owner=owner, name=name or f"Group {next(_seq)}", kind=kind)
    Grant.objects.bulk_create(
        [Grant(role_group=group, area=a, level=lvl) for a, lvl in (grants or {}).items()]
    )
    return group


def make_role(owner: Owner, name: str | None = None, groups=()) -> Role:
    role = Role.objects.create(owner=owner, name=name or f"Role {next(_seq)}")
    role.role_groups.set(groups)
    return role


def make_user(
    owner: Owner | None = None,
    *,
    grants: dict | None = None,
    role: Role | None = None,
    password: str = PASSWORD,
    username: str | None = None,
    **fields,
) -> User:
    """Create a user; `grants` gives it a role with one group holding exactly those levels."""
    owner = owner or make_owner()
    if grants is not None and role is None:
        role = make_role(owner, groups=[make_role_group(owner, grants=grants)])
    n = next(_seq)
    username = username or f"user{n}"
    fields.setdefault("email", f"{username}@example.test")
    fields.setdefault("privilege_level", 5)
    return User.objects.create_user(username, password=password, owner=owner, role=role, **fields)


def make_override(
    user: User, area: str, level: str, reason: str = "test", **fields
) -> PermissionOverride:
    return PermissionOverride.objects.create(
        user=user, area=area, level=level, reason=reason, **fields
    )


def make_department(owner: Owner, name: str) -> Department:
    return Department.objects.create(owner=owner, name=name)


def make_update_reason(owner: Owner, name: str = "Correction") -> UpdateReason:
    return UpdateReason.objects.create(owner=owner, name=name)


def make_commission_profile(owner: Owner, name: str = "Standard"):
    from accounts.models import CommissionProfile

    return CommissionProfile.objects.create(owner=owner, name=name)


def user_form_data(**overrides) -> dict:
    """Return a valid POST body of the user create form (edit adds row_version and a reason)."""
    data = {
        "first_name": "Nora",
        "last_name": "Newcomer",
        "display_name": "",
        "username": "nora",
        "email": "nora@example.test",
        "locale": "en-gb",
        "time_zone": "Europe/London",
        "kind": "interactive",
        "auth_source": "local",
        "allow_login": "on",
        "customer_access_scope": "all",
        "privilege_level": "3",
        "expert_level": "0",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


def make_totp_device(user: User, *, confirmed: bool = True):
    """Give `user` a TOTP device; return (device, pyotp.TOTP) to compute its codes."""
    import pyotp
    from django.utils import timezone

    from accounts.twofactor.models import TOTPDevice

    device = TOTPDevice.with_new_key(user)
    device.confirmed = confirmed
    device.confirmed_at = timezone.now() if confirmed else None
    device.save()
    return device, pyotp.TOTP(device.base32_secret)


def make_api_user(
    owner: Owner | None = None,
    *,
    api_grants: dict | None = None,
    app_grants: dict | None = None,
    **fields,
) -> User:
    """Create an API user (no Login flag, API read and write) holding `api_grants` via its role."""
    owner = owner or make_owner()
    groups = [make_role_group(owner, grants=api_grants or {}, kind="api")]
    if app_grants:
        groups.append(make_role_group(owner, grants=app_grants))
    fields.setdefault("kind", "api")
    fields.setdefault("allow_login", False)
    fields.setdefault("allow_api_read", True)
    fields.setdefault("allow_api_write", True)
    return make_user(owner, role=make_role(owner, groups=groups), **fields)


def make_token(user: User, *, actor: User | None = None, days: int = 30, **fields):
    """Create a token through the service; return (token, full text)."""
    import datetime

    from django.utils import timezone

    from accounts.tokens import services as tokens

    fields.setdefault("name", "Test integration")
    fields.setdefault("reason", "")
    return tokens.create_token(
        user,
        actor=actor or user,
        expires_at=timezone.now() + datetime.timedelta(days=days),
        **fields,
    )
