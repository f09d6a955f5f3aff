from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self):
        from security import stepup

        from .twofactor import services as twofactor

        # Codes entered at step-up go through the same check as at sign-in.
        stepup.register_second_factor_check(twofactor.verify_second_factor)
