from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import views

app_name = "tokens"

urlpatterns = [
    path("me/tokens/", views.my_tokens, name="my_tokens"),
    path("users/<int:pk>/tokens/", views.user_tokens, name="user_tokens"),
    path("tokens/", views.token_list, name="token_list"),
    path("tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]

register(
    Screen(
        "tokens:my_tokens",
        "Your API tokens",
        "You",
        None,
        description="Tokens your integrations use to call the API as you.",
        visible_to=lambda user: user.has_api_access,
    ),
    Screen(
        "tokens:token_list",
        "API tokens",
        "Access",
        catalog.USERS,
        catalog.FULL,
        description="Every API token of your organisation: its user, scope, last use, expiry.",
    ),
)
