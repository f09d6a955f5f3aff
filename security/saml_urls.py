"""URLs of single sign-on, mounted at /saml2/ (djangosaml2's paths, so IdP settings stay stable)."""

from django.urls import path

from portal.navigation import Screen, register
from roles import catalog

from . import saml_screens, saml_views

app_name = "saml"

urlpatterns = [
    path("login/", saml_views.sign_in, name="sign_in"),
    path("acs/", saml_views.assertion_consumer_service, name="acs"),
    path("metadata/", saml_views.metadata, name="metadata"),
    path("logout/", saml_views.sign_out, name="sign_out"),
    path("ls/", saml_views.logout_service, name="logout_service"),
    path("ls/post/", saml_views.logout_service, name="logout_service_post"),
    path("providers/", saml_screens.ProviderListView.as_view(), name="provider_list"),
    path("providers/new/", saml_screens.ProviderFormView.as_view(), name="provider_create"),
    path("providers/<int:pk>/", saml_screens.ProviderDetailView.as_view(), name="provider_detail"),
    path("providers/<int:pk>/edit/", saml_screens.ProviderFormView.as_view(), name="provider_edit"),
    path(
        "providers/<int:pk>/delete/",
        saml_screens.ProviderDeleteView.as_view(),
        name="provider_delete",
    ),
    path(
        "providers/<int:pk>/mappings/new/",
        saml_screens.MappingFormView.as_view(),
        name="mapping_create",
    ),
    path(
        "providers/<int:pk>/mappings/<int:mapping_pk>/edit/",
        saml_screens.MappingFormView.as_view(),
        name="mapping_edit",
    ),
    path(
        "providers/<int:pk>/mappings/<int:mapping_pk>/delete/",
        saml_screens.MappingDeleteView.as_view(),
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
