from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo owner and its month of history (`manage.py seed_demo`): a consumer of every app's
    services, so it sits above them all."""

    name = "demo"
