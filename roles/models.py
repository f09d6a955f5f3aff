"""Authorization data: role groups with their grants (the matrix), roles, and user overrides."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from . import catalog
from .choices import RequestState, RoleGroupKind, SodEffect, SodJoin


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
    self_activation = models.BooleanField(
        default=False,
        help_text="People eligible for it activate it themselves (after confirming who they "
        "are) instead of asking someone to approve.",
    )
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
    eligible_role_groups = models.ManyToManyField(
        RoleGroup,
        blank=True,
        related_name="eligible_in_roles",
        help_text="Groups its holders may ask for, for a few hours at a time; never standing.",
    )
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


class Eligibility(models.Model):
    """One user made eligible for one role group, beside what their role makes them eligible for.

    Eligible access never counts until an approved request activates it for a while.
    """

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="eligibilities"
    )
    role_group = models.ForeignKey(
        RoleGroup, on_delete=models.CASCADE, related_name="eligibilities"
    )
    reason = models.CharField(max_length=500)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["role_group__name"]
        constraints = [
            models.UniqueConstraint("user", "role_group", name="eligibility_unique_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user_id} eligible for {self.role_group}"


class AccessRequestQuerySet(models.QuerySet):
    def for_owner(self, owner):
        return self.filter(owner=owner)

    def active(self, now=None):
        """Approved requests whose window holds `now`: the elevations in force."""
        now = now or timezone.now()
        return self.filter(state=RequestState.APPROVED, starts_at__lte=now, ends_at__gt=now)

    def not_over(self, now=None):
        """Approved requests that are in force or still to start."""
        now = now or timezone.now()
        return self.filter(state=RequestState.APPROVED, ends_at__gt=now)


class AccessRequest(models.Model):
    """A request for an eligible role group for a window of time, decided by someone else.

    Approved, it is an *elevation*: the resolver counts its group only while
    `starts_at <= now < ends_at`, so it ends exactly on time without any job. Ending it early
    moves `ends_at` to that moment and names who ended it.
    """

    owner = models.ForeignKey(
        "accounts.Owner", on_delete=models.CASCADE, related_name="access_requests"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="access_requests"
    )
    role_group = models.ForeignKey(
        RoleGroup, on_delete=models.PROTECT, related_name="access_requests"
    )
    starts_at = models.DateTimeField()
    ends_at = models.DateTimeField()
    requested_ends_at = models.DateTimeField()
    justification = models.CharField(max_length=1000)
    ticket = models.CharField(max_length=120, blank=True)
    state = models.CharField(
        max_length=20, choices=RequestState.choices, default=RequestState.PENDING
    )
    break_glass = models.BooleanField(default=False)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.CharField(max_length=500, blank=True)
    ended_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    ended_early_at = models.DateTimeField(null=True, blank=True)
    end_reason = models.CharField(max_length=500, blank=True)
    activation_recorded_at = models.DateTimeField(null=True, blank=True)
    expiry_recorded_at = models.DateTimeField(null=True, blank=True)
    row_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)

    objects = AccessRequestQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["user", "state", "ends_at"], name="accessrequest_user_window"),
            models.Index(fields=["owner", "state", "ends_at"], name="accessrequest_owner_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(ends_at__gte=models.F("starts_at")),
                name="accessrequest_ends_after_start",
            )
        ]

    def __str__(self) -> str:
        return f"Request #{self.pk}: {self.role_group} for {self.user_id}"

    def status(self, now=None) -> str:
        """Say where the request stands now: waiting, scheduled, active, ended, expired..."""
        now = now or timezone.now()
        if self.state != RequestState.APPROVED:
            if self.state == RequestState.PENDING and self.requested_ends_at <= now:
                return "lapsed"
            return self.state
        if self.ended_early_at is not None:
            return "ended"
        if now < self.starts_at:
            return "scheduled"
        if now < self.ends_at:
            return "active"
        return "expired"


class SodRule(models.Model):
    """A separation-of-duties rule: nobody may hold both sides at once.

    Each side is a list of [area, minimum level] pairs joined by "any of" or "all of"; a person
    violates the rule when their effective access (standing plus elevations in force) satisfies
    both sides. `effect` says whether such a change is blocked or needs an approved exception.
    """

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="sod_rules")
    name = models.CharField(max_length=120)
    description = models.TextField(blank=True, max_length=2000)
    left = models.JSONField(default=list)
    left_join = models.CharField(max_length=3, choices=SodJoin.choices, default=SodJoin.ANY)
    right = models.JSONField(default=list)
    right_join = models.CharField(max_length=3, choices=SodJoin.choices, default=SodJoin.ANY)
    effect = models.CharField(max_length=20, choices=SodEffect.choices, default=SodEffect.BLOCK)
    row_version = models.PositiveIntegerField(default=1)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(default=timezone.now)

    objects = OwnedQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint("owner", Lower("name"), name="sodrule_unique_name_per_owner")
        ]

    def __str__(self) -> str:
        return self.name


class SodExceptionQuerySet(models.QuerySet):
    def in_force(self, now=None):
        now = now or timezone.now()
        return self.filter(revoked_at__isnull=True, expires_at__gt=now)


class SodException(models.Model):
    """An approved, expiring exception: `user` may hold both sides of `rule` until `expires_at`."""

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    rule = models.ForeignKey(SodRule, on_delete=models.CASCADE, related_name="exceptions")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="sod_exceptions"
    )
    reason = models.CharField(max_length=500)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    objects = SodExceptionQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "expires_at"], name="sodexception_user_expiry")]

    def __str__(self) -> str:
        return f"{self.rule} exception for {self.user_id}"
