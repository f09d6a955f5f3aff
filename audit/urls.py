from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import views

app_name = "audit"

urlpatterns = [
    path("activity/", views.activity, name="activity"),
    path("activity/events/<int:pk>/", views.event_detail, name="event_detail"),
    path("activity/<slug:tab>/export.csv", views.export, name="export"),
    path("activity/<slug:tab>/", views.activity, name="activity_tab"),
]

register(
    Screen(
        "audit:activity",
        "Activity",
        "Activity",
        catalog.USER_ACTIVITY,
        catalog.READ,
        description="Sign-ins, failed attempts, record changes, security events; export.",
    ),
)
