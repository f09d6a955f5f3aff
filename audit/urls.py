from django.urls import path

from portal.navigation import Screen, register

from . import views
from .queries import USER_ACTIVITY

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
        USER_ACTIVITY,
        "read",
        description="Sign-ins, failed attempts, record changes, security events; export.",
    ),
)
