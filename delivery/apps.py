from django.apps import AppConfig


class DeliveryConfig(AppConfig):
    name = "delivery"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Delivery (outbox and email)"

    def ready(self):
        from accounts import record
        from roles import catalog

        from . import checks, email, panels, sweeps  # noqa: F401 - checks register themselves

        sweeps.register(panels.overdue_emails)
        sweeps.register_purge("emails", email.purge_finished)
        record.register_security_panel(
            record.SecurityPanel(
                name="emails",
                template_name="delivery/emails_panel.html",
                area=catalog.USERS,
                level=catalog.READ,
                context=panels.emails_of,
            )
        )
