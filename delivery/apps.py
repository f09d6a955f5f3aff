from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Delivery (outbox and email)"

    def ready(self):
        from . import checks, email, panels, sweeps  # noqa: F401 - checks register themselves

        sweeps.register(panels.overdue_emails)
        sweeps.register_purge("emails", email.purge_finished)
