"""Enumerations of the roles app."""

from django.db import models


class RoleGroupKind(models.TextChoices):
    APPLICATION = "application", "Application"
    API = "api", "API"
