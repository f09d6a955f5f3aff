from django.apps import AppConfig


class ScimConfig(AppConfig):
    name = "scim"
    verbose_name = "Provisioning (SCIM)"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from accounts.users import register_idp_managed_fields

        from .services import idp_managed_fields

        # The user screens and services refuse changing what the identity provider provisions.
        register_idp_managed_fields(idp_managed_fields)
