from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from .. import record
from . import views

app_name = "twofactor"

urlpatterns = [
    path("sign-in/verify/", views.verify, name="verify"),
    path("me/two-factor/", views.manage, name="manage"),
    path("me/two-factor/set-up/", views.enrol, name="enrol"),
    path("me/two-factor/backup-codes/", views.regenerate_codes, name="regenerate_codes"),
    path("me/two-factor/remove/", views.remove, name="remove"),
    path("users/<int:pk>/two-factor/reset/", views.reset, name="reset"),
    path("users/<int:pk>/recovery/", views.recovery_console, name="recovery_console"),
    path("recover/", views.recover, name="recover"),
    path("recover/choose/", views.recover_choose, name="recover_choose"),
]

register(
    Screen(
        "twofactor:manage",
        "Two-factor sign-in",
        "You",
        None,
        description="Your authenticator app and backup codes.",
    ),
)

record.register_action(
    record.RecordAction(
        "twofactor:recovery_console", "Recovery console", catalog.DP_ACCESS, catalog.FULL
    )
)
