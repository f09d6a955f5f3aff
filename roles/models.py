"""Authorization data: role groups with their grants (the matrix), roles, and user overrides."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from . import catalog
from .choices import RoleGroupKind


class OwnedQuerySet(models.QuerySet):
    def for_owner(self, owner):
        return self.filter(owner=owner)


class RoleGroup(models.Model):
    """A reusable set of grants, for the application screens or for the API."""

    owner = models.ForeignKey(
        "accounts.Owner", on_delete=models.CASCADE, related_name="role_groups"
    )
    name = models.CharField(max_length=120)
    kind = models.CharField(
        max_length=20, choices=RoleGroupKind.choices, default=RoleGroupKind.APPLICATION
    )
    description = models.TextField(blank=True, max_length=2000)
    row_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="rolegroup_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def channel(self) -> str:
        return (
            catalog.Channel.API if self.kind == RoleGroupKind.API else catalog.Channel.APPLICATION
        )

    def levels(self) -> dict[str, str]:
        """Return {area code: level} of this group's non-empty grants."""
        return dict(self.grants.values_list("area", "level"))


class Grant(models.Model):
    """One cell of the permission matrix: a role group grants `level` on `area`."""

    role_group = models.ForeignKey(RoleGroup, on_delete=models.CASCADE, related_name="grants")
    area = models.CharField(max_length=80)
    level = models.CharField(max_length=20)

    class Meta:
        constraints = [
            models.UniqueConstraint("role_group", "area", name="grant_unique_area_per_group")
        ]

    def __str__(self) -> str:
        return f"{self.role_group}: {self.area}={self.level}"

    def clean(self):
        try:
            area = catalog.validate(self.area, self.level)
        except ValueError as exc:
            raise ValidationError(str(exc)) from exc
        if area.channel != self.role_group.channel:
            raise ValidationError(
                f"{area.label} cannot be granted by a {self.role_group.kind} group."
            )


class Role(models.Model):
    """A business function ("Finance clerk") that combines role groups; a user holds one role."""

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="roles")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    role_groups = models.ManyToManyField(RoleGroup, blank=True, related_name="roles")
    row_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="role_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class PermissionOverrideQuerySet(models.QuerySet):
    def in_force(self, now=None):
        now = now or timezone.now()
        return self.filter(models.Q(expires_at__isnull=True) | models.Q(expires_at__gt=now))


class PermissionOverride(models.Model):
    """Set one area of one user to a level, whatever the groups say: an extension or a deny.

    A level below what the groups give is a restriction that no group can undo; above is an
    extension. An expired override stops counting on its own.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="permission_overrides"
    )
    area = models.CharField(max_length=80)
    level = models.CharField(max_length=20)
    reason = models.CharField(max_length=500)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    objects = PermissionOverrideQuerySet.as_manager()

    class Meta:
        ordering = ["area"]
        constraints = [
            models.UniqueConstraint("user", "area", name="override_unique_area_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.area}={self.level}"

    @property
    def area_info(self) -> catalog.Area:
        return catalog.get(self.area)

    def is_in_force(self, now=None) -> bool:
        return self.expires_at is None or self.expires_at > (now or timezone.now())
