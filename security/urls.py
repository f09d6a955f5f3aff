from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import views

app_name = "security"

urlpatterns = [
    path("settings/password-policy/", views.policy_edit, name="policy"),
    path("me/password/", views.password_change, name="password_change"),
    path("me/confirm/", views.reauthenticate, name="reauthenticate"),
    path("me/sessions/", views.my_sessions, name="my_sessions"),
    path("me/keep-alive/", views.keep_alive, name="keep_alive"),
    path("users/locked-out/", views.lockouts, name="lockouts"),
    path("users/<int:pk>/unlock/", views.lockout_clear, name="lockout_clear"),
    path("users/<int:pk>/sessions/", views.user_sessions, name="user_sessions"),
    path("users/<int:pk>/sign-in-restriction/", views.user_restriction, name="user_restriction"),
]

register(
    Screen(
        "security:my_sessions",
        "Your sessions",
        "You",
        None,
        description="Where you are signed in; sign out of the others.",
    ),
    Screen(
        "security:password_change",
        "Change password",
        "You",
        None,
        description="Choose a new password.",
    ),
    Screen(
        "security:lockouts",
        "Locked-out users",
        "People",
        catalog.USERS,
        catalog.FULL,
        description="Users locked out after failed sign-ins; unlock them.",
    ),
    Screen(
        "security:policy",
        "Password policy",
        "Settings",
        catalog.PARAMETERS,
        catalog.READ,
        description="Passwords, lockout, session timeouts and 2FA for your organisation.",
    ),
)
