from django.apps import AppConfig


class SsoConfig(AppConfig):
    name = "sso"
    verbose_name = "Single sign-on (SAML)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.users import register_idp_managed_fields

        from . import checks  # noqa: F401  (registers the system checks)
        from .services import idp_managed_fields

        # The user screens and services refuse changing what a SAML sign-in sets.
        register_idp_managed_fields(idp_managed_fields)
