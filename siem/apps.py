from django.apps import AppConfig


class SiemConfig(AppConfig):
    name = "siem"
    default_auto_field = "django.db.models.BigAutoField"
    verbose_name = "SIEM streaming"

    def ready(self):
        from audit.services import on_record
        from delivery import sweeps

        from . import stream

        on_record(stream.on_audit_event, listener=stream.LISTENER)
        sweeps.register(stream.requeue_overdue)
