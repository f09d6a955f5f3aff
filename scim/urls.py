"""The SCIM service provider under /scim/v2/ and the administrators' token screen."""

from django.urls import path, re_path

from portal.navigation import Screen, register
from roles import catalog

from . import screens, views

app_name = "scim"

urlpatterns = [
    path("settings/provisioning/", screens.token_list, name="tokens"),
    path("settings/provisioning/<int:pk>/revoke/", screens.token_revoke, name="token_revoke"),
    re_path(r"^scim/v2/Users/?$", views.users, name="users"),
    re_path(r"^scim/v2/Users/(?P<pk>[^/]+)/?$", views.user_detail, name="user"),
    re_path(r"^scim/v2/Groups/?$", views.groups, name="groups"),
    re_path(r"^scim/v2/Groups/(?P<pk>[^/]+)/?$", views.group_detail, name="group"),
    re_path(
        r"^scim/v2/ServiceProviderConfig/?$",
        views.service_provider_config,
        name="service_provider_config",
    ),
    re_path(r"^scim/v2/ResourceTypes/?$", views.resource_types, name="resource_types"),
    re_path(r"^scim/v2/ResourceTypes/(?P<pk>[^/]+)/?$", views.resource_types, name="resource_type"),
    re_path(r"^scim/v2/Schemas/?$", views.schemas, name="schemas"),
    re_path(r"^scim/v2/Schemas/(?P<pk>[^/]+)/?$", views.schemas, name="schema"),
    re_path(r"^scim/v2/\.search$", views.root_search, name="root_search"),
    re_path(r"^scim/v2/(?P<rest>.*)$", views.unknown, name="unknown"),
]

register(
    Screen(
        "scim:tokens",
        "Provisioning (SCIM)",
        "Settings",
        catalog.PARAMETERS,
        catalog.FULL,
        description="Tokens with which Okta or Entra ID create, change and remove users.",
    ),
)
