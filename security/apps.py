from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401  (registers the system checks)
        from .middleware import stamp_session_epoch
        from .sso import checks as sso_checks  # noqa: F401  (and those of single sign-on)

        user_logged_in.connect(stamp_session_epoch, dispatch_uid="security.stamp_session_epoch")

        from accounts.users import register_idp_managed_fields

        from .sso.services import idp_managed_fields

        # The user screens and services refuse changing what a SAML sign-in sets.
        register_idp_managed_fields(idp_managed_fields)
