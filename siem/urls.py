"""The SIEM stream screen under /settings/siem/."""

from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import views

app_name = "siem"

urlpatterns = [path("settings/siem/", views.stream_settings, name="stream")]

register(
    Screen(
        "siem:stream",
        "SIEM streaming",
        "Settings",
        catalog.PARAMETERS,
        catalog.READ,
        description="The audit log streamed to your SIEM (syslog over TLS), hash chain included.",
    ),
)
