"""URLs of single sign-on, mounted at /saml2/ (djangosaml2's paths, so IdP settings stay stable)."""

from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import screens, views

app_name = "saml"

urlpatterns = [
    path("login/", views.sign_in, name="sign_in"),
    path("acs/", views.assertion_consumer_service, name="acs"),
    path("metadata/", views.metadata, name="metadata"),
    path("logout/", views.sign_out, name="sign_out"),
    path("ls/", views.logout_service, name="logout_service"),
    path("ls/post/", views.logout_service, name="logout_service_post"),
    path("providers/", screens.ProviderListView.as_view(), name="provider_list"),
    path("providers/new/", screens.ProviderFormView.as_view(), name="provider_create"),
    path("providers/<int:pk>/", screens.ProviderDetailView.as_view(), name="provider_detail"),
    path("providers/<int:pk>/edit/", screens.ProviderFormView.as_view(), name="provider_edit"),
    path(
        "providers/<int:pk>/delete/",
        screens.ProviderDeleteView.as_view(),
        name="provider_delete",
    ),
    path(
        "providers/<int:pk>/mappings/new/",
        screens.MappingFormView.as_view(),
        name="mapping_create",
    ),
    path(
        "providers/<int:pk>/mappings/<int:mapping_pk>/edit/",
        screens.MappingFormView.as_view(),
        name="mapping_edit",
    ),
    path(
        "providers/<int:pk>/mappings/<int:mapping_pk>/delete/",
        screens.MappingDeleteView.as_view(),
        name="mapping_delete",
    ),
]

register(
    Screen(
        "saml:provider_list",
        "Single sign-on",
        "Settings",
        catalog.PARAMETERS,
        catalog.READ,
        description="Identity providers (Okta, Entra ID), attribute and group mappings.",
    )
)
