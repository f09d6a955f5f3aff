from django.urls import path

from roles import catalog

from .. import record
from . import services, views

app_name = "passkeys"

urlpatterns = [
    path("sign-in/passkey/begin/", views.sign_in_begin, name="sign_in_begin"),
    path("sign-in/passkey/complete/", views.sign_in_complete, name="sign_in_complete"),
    path("me/two-factor/passkeys/add/", views.add, name="add"),
    path("me/two-factor/passkeys/add/begin/", views.register_begin, name="register_begin"),
    path("me/two-factor/passkeys/add/complete/", views.register_complete, name="register_complete"),
    path("me/two-factor/passkeys/<int:pk>/remove/", views.remove, name="remove"),
    path("me/confirm/passkey/begin/", views.step_up_begin, name="step_up_begin"),
    path("me/confirm/passkey/complete/", views.step_up_complete, name="step_up_complete"),
    path(
        "users/<int:pk>/authenticators/<str:kind>/<int:device>/revoke/",
        views.revoke,
        name="revoke",
    ),
]


def _authenticators_panel(request, subject) -> dict:
    from roles.guards import EscalationRefused, check_can_manage_user

    can_revoke = request.permissions.has(catalog.DP_ACCESS, catalog.FULL)
    if can_revoke and subject.pk != request.user.pk:
        try:
            check_can_manage_user(request.user, subject)
        except EscalationRefused:
            can_revoke = False
    return {
        "authenticators": services.authenticators_of(subject),
        "can_revoke": can_revoke and subject.pk != request.user.pk,
        "own": subject.pk == request.user.pk,
    }


record.register_security_panel(
    record.SecurityPanel(
        "authenticators",
        "passkeys/_authenticators_panel.html",
        catalog.USERS,
        catalog.READ,
        context=_authenticators_panel,
    )
)
