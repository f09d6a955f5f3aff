"""Enumerations of the roles app."""

from django.db import models


class RoleGroupKind(models.TextChoices):
    APPLICATION = "application", "Application"
    API = "api", "API"


class RequestState(models.TextChoices):
    """Where an access request stands; an approved one is an elevation while its window lasts."""

    PENDING = "pending", "Waiting for approval"
    APPROVED = "approved", "Approved"
    DENIED = "denied", "Denied"
    WITHDRAWN = "withdrawn", "Withdrawn"
