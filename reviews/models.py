"""Access review campaigns: a frozen list of who held what, and each reviewer's decision."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from .choices import CampaignStatus, Decision, ScopeKind


class ReviewCampaign(models.Model):
    """A re-certification of access for the users of one owner in a scope, by named reviewers.

    `scope` holds the parameters of `scope_kind` as chosen ({"role_id", "role"} for a role,
    {"department_id", "department"} for a department, {"area", "level"} for an area), with the
    names copied so that the campaign reads right after a role is renamed or deleted.
    """

    owner = models.ForeignKey("accounts.Owner", on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=200)
    scope_kind = models.CharField(max_length=20, choices=ScopeKind.choices)
    scope = models.JSONField(default=dict, blank=True)
    reviewers = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="review_campaigns", blank=True
    )
    due_date = models.DateField()
    status = models.CharField(
        max_length=10, choices=CampaignStatus.choices, default=CampaignStatus.OPEN
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    created_at = models.DateTimeField(default=timezone.now)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["owner", "status", "created_at"], name="campaign_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.name

    @property
    def is_open(self) -> bool:
        return self.status == CampaignStatus.OPEN

    @property
    def is_overdue(self) -> bool:
        return self.is_open and self.due_date < timezone.localdate()

    @property
    def reason(self) -> str:
        """The reason given to every change this campaign applies."""
        return f"Access review: {self.name}"

    def scope_text(self) -> str:
        scope = self.scope or {}
        if self.scope_kind == ScopeKind.ROLE:
            return f"Users of the role {scope.get('role', '?')}"
        if self.scope_kind == ScopeKind.DEPARTMENT:
            return f"Users of the department {scope.get('department', '?')}"
        if self.scope_kind == ScopeKind.AREA:
            return f"Users reaching {scope.get('level', '?')} on {scope.get('area_label', '?')}"
        return "All users with access"


class ReviewItem(models.Model):
    """One user under review: what they held when the campaign began, and the decision on it.

    `snapshot` is written once, at creation, and never recomputed: {"username", "label",
    "role", "extra_groups", "overrides": [{"id", "area", "label", "level", "reason",
    "expires_at"}], "eligible": [{"group_id", "group", "via": "role" | "user", "held", and
    "role_id", "role" or "eligibility_id", "reason"}], "application": {area: level},
    "api": {area: level}, "allow_login", "privilege_level"}. Items of campaigns opened before
    eligibility was recorded have no "eligible" key. A decision is applied when `applied_at`
    is set; a refusal (escalation, a rule of the service) leaves it unapplied with
    `apply_error` saying why.
    """

    campaign = models.ForeignKey(ReviewCampaign, on_delete=models.CASCADE, related_name="items")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    snapshot = models.JSONField(default=dict)
    decision = models.CharField(max_length=20, choices=Decision.choices, default=Decision.PENDING)
    new_role = models.ForeignKey(
        "roles.Role", on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    override_id = models.BigIntegerField(null=True, blank=True)
    eligibility_id = models.BigIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True)
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    apply_error = models.TextField(blank=True)
    outcome = models.CharField(max_length=300, blank=True)  # what applying changed, in words

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "user"], name="review_item_once_per_user")
        ]

    def __str__(self) -> str:
        return self.label

    @property
    def label(self) -> str:
        return self.snapshot.get("label") or self.snapshot.get("username") or f"Item {self.pk}"

    @property
    def is_decided(self) -> bool:
        return self.decision != Decision.PENDING

    @property
    def is_settled(self) -> bool:
        """Decided and applied: nothing left to do for this user."""
        return self.is_decided and self.applied_at is not None

    @property
    def records_eligibility(self) -> bool:
        return "eligible" in self.snapshot

    def own_eligibilities(self) -> list[dict]:
        """Return the user's own eligibilities at the review's start (those a decision removes)."""
        return [e for e in self.snapshot.get("eligible", []) if e.get("via") == "user"]

    def eligibility_snapshot(self) -> dict | None:
        for entry in self.own_eligibilities():
            if entry.get("eligibility_id") == self.eligibility_id:
                return entry
        return None

    def override_snapshot(self) -> dict | None:
        for override in self.snapshot.get("overrides", []):
            if override.get("id") == self.override_id:
                return override
        return None
