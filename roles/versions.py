"""Bump permission versions: call inside the transaction of any change that can move access."""

from __future__ import annotations

from django.apps import apps
from django.contrib.auth import get_user_model
from django.db.models import F


def bump_user(*users) -> None:
    """Invalidate the permission cache of these users (role, groups, overrides, flags changed)."""
    ids = [getattr(u, "pk", u) for u in users]
    get_user_model().objects.filter(pk__in=ids).update(
        permissions_version=F("permissions_version") + 1
    )
    for user in users:
        if hasattr(user, "permissions_version"):
            user.refresh_from_db(fields=["permissions_version"])


def bump_owner(owner) -> None:
    """Invalidate the permission cache of every user of `owner` (a matrix or a role changed)."""
    apps.get_model("accounts", "Owner").objects.filter(pk=owner.pk).update(
        authz_epoch=F("authz_epoch") + 1
    )
    owner.refresh_from_db(fields=["authz_epoch"])
