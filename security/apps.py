from django.apps import AppConfig


class SecurityConfig(AppConfig):
    name = "security"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from django.contrib.auth.signals import user_logged_in

        from . import checks  # noqa: F401  (registers the system checks)
        from .middleware import stamp_session_epoch

        user_logged_in.connect(stamp_session_epoch, dispatch_uid="security.stamp_session_epoch")
