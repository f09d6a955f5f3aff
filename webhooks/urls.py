"""Webhook endpoint screens under /settings/webhooks/."""

from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import views

app_name = "webhooks"

urlpatterns = [
    path("settings/webhooks/", views.endpoint_list, name="endpoint_list"),
    path("settings/webhooks/new/", views.endpoint_create, name="endpoint_create"),
    path("settings/webhooks/<int:pk>/", views.endpoint_detail, name="endpoint_detail"),
    path("settings/webhooks/<int:pk>/edit/", views.endpoint_edit, name="endpoint_edit"),
    path("settings/webhooks/<int:pk>/delete/", views.endpoint_delete, name="endpoint_delete"),
    path("settings/webhooks/<int:pk>/test/", views.endpoint_test, name="endpoint_test"),
    path("settings/webhooks/<int:pk>/rotate/", views.endpoint_rotate, name="endpoint_rotate"),
    path(
        "settings/webhooks/<int:pk>/finish-rotation/",
        views.endpoint_finish_rotation,
        name="endpoint_finish_rotation",
    ),
    path(
        "settings/webhooks/<int:pk>/deliveries/<int:delivery_pk>/resend/",
        views.delivery_resend,
        name="delivery_resend",
    ),
]

register(
    Screen(
        "webhooks:endpoint_list",
        "Webhooks",
        "Settings",
        catalog.PARAMETERS,
        catalog.READ,
        description="Signed change events (users, permissions, roles) sent to your systems.",
    ),
)
