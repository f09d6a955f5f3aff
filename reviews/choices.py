"""Enumerations of the reviews app."""

from django.db import models


class ScopeKind(models.TextChoices):
    ALL = "all", "All users"
    ROLE = "role", "Users of a role"
    DEPARTMENT = "department", "Users of a department"
    AREA = "area", "Users reaching an area at a minimum level"


class CampaignStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class Decision(models.TextChoices):
    PENDING = "pending", "Pending"
    KEEP = "keep", "Keep access"
    CHANGE_ROLE = "change_role", "Change role"
    REMOVE_OVERRIDE = "remove_override", "Remove override"
    REMOVE_ELIGIBILITY = "remove_eligibility", "Remove eligibility"
    DEACTIVATE = "deactivate", "Deactivate"
