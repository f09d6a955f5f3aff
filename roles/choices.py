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


class SodJoin(models.TextChoices):
    """How the (area, level) pairs of one side of a separation-of-duties rule combine."""

    ANY = "any", "Any of"
    ALL = "all", "All of"


class SodEffect(models.TextChoices):
    """What a violation of a separation-of-duties rule does to the change that would cause it."""

    BLOCK = "block", "Block the change"
    EXCEPTION = "exception", "Allow with an approved exception"
