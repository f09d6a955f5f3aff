from django.apps import AppConfig


class WebhooksConfig(AppConfig):
    name = "webhooks"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "Webhooks"

    def ready(self):
        from audit.services import on_record
        from delivery import sweeps

        from . import deliveries, events, listening

        on_record(events.on_audit_event, listener=listening.LISTENER)
        sweeps.register(deliveries.requeue_overdue)
        sweeps.register(deliveries.drop_previous_secrets)
        sweeps.register_purge("webhook messages", deliveries.purge_finished)
