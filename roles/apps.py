from django.apps import AppConfig


class RolesConfig(AppConfig):
    name = "roles"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from . import checks  # noqa: F401 - checks register themselves
