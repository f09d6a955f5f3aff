from django.apps import AppConfig


class PortalConfig(AppConfig):
    """Installed for its template tags (`{% load navigation %}`); it has no models."""

    name = "portal"
