from django.apps import AppConfig


class OpsConfig(AppConfig):
    name = "ops"
    verbose_name = "Operations (health, readiness, metrics)"

    def ready(self):
        from . import checks, metrics  # noqa: F401 - checks register themselves

        metrics.listen()
