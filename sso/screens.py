"""Screens of single sign-on: the owner's identity providers and their group mappings.

Reading needs Parameters (read); every change needs Parameters (full).
"""

from __future__ import annotations

from django import forms
from django.shortcuts import get_object_or_404
from django.urls import reverse

from portal.generic import PortalConfirmView, PortalDetailView, PortalFormView, PortalListView
from portal.owned import get_owned_or_404
from roles import catalog

from . import config, services
from .forms import GroupMappingForm, IdentityProviderForm
from .metadata import parse_idp_metadata
from .models import SamlGroupMapping, SamlIdentityProvider

READ = (catalog.PARAMETERS, catalog.READ)
FULL = (catalog.PARAMETERS, catalog.FULL)


def service_provider_facts() -> dict:
    """What an administrator types into Okta or Entra ID about this portal."""
    return {
        "sp_entity_id": config.sp_entity_id(),
        "sp_acs_url": config.acs_url(),
        "sp_logout_url": config.public_url("/saml2/ls/"),
        "sp_metadata_url": config.sp_entity_id(),
    }


class ProviderListView(PortalListView):
    model = SamlIdentityProvider
    permission = READ
    template_name = "sso/provider_list.html"
    context_object_name = "providers"

    def get_queryset(self):
        return super().get_queryset().select_related("default_role")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(service_provider_facts())
        context["can_change"] = self.request.permissions.has(*FULL)
        return context


class ProviderDetailView(PortalDetailView):
    model = SamlIdentityProvider
    permission = READ
    template_name = "sso/provider_detail.html"
    context_object_name = "provider"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        provider = self.object
        try:
            context["metadata"] = parse_idp_metadata(provider.metadata_xml)
        except Exception:  # noqa: BLE001 - stored metadata was valid when saved
            context["metadata"] = None
        context["mappings"] = provider.group_mappings.select_related("role").prefetch_related(
            "role_groups"
        )
        context["people"] = provider.identities.count()
        context["identities"] = provider.identities.select_related("user").order_by(
            "-last_used_at", "-id"
        )[:50]
        context["sign_in_url"] = config.public_url(reverse("saml:sign_in") + f"?idp={provider.pk}")
        context["can_change"] = self.request.permissions.has(*FULL)
        context.update(service_provider_facts())
        return context


class ProviderFormView(PortalFormView):
    """Create (no pk) or edit an identity provider."""

    permission = FULL
    form_class = IdentityProviderForm
    template_name = "sso/provider_form.html"

    def get_provider(self):
        pk = self.kwargs.get("pk")
        if pk is None:
            return None
        if not hasattr(self, "_provider"):
            self._provider = get_owned_or_404(
                self.request.user, SamlIdentityProvider.objects.all(), pk
            )
        return self._provider

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["owner"] = self.request.user.owner
        kwargs["instance"] = self.get_provider()
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["provider"] = self.get_provider()
        context.update(service_provider_facts())
        return context

    def perform(self, form):
        return services.save_provider(
            self.request.user,
            self.get_provider(),
            form.data_for_service(),
            row_version=form.cleaned_data.get("row_version"),
            reason="",
        )

    @property
    def success_message(self):
        return "Identity provider saved."

    def get_success_url(self):
        return reverse("saml:provider_detail", args=[self.result.pk])


class ProviderDeleteView(PortalConfirmView):
    permission = FULL
    form_class = forms.Form
    title = "Delete identity provider"
    confirm_label = "Delete identity provider"
    success_message = "Identity provider deleted."

    def get_provider(self):
        if not hasattr(self, "_provider"):
            self._provider = get_owned_or_404(
                self.request.user, SamlIdentityProvider.objects.all(), self.kwargs["pk"]
            )
        return self._provider

    @property
    def question(self):
        return f"Delete {self.get_provider().name}?"

    def consequences(self):
        provider = self.get_provider()
        return [
            f"{provider.identities.count()} people lose the link to their identity at this "
            "provider and can no longer sign in with it. Their accounts stay.",
            "To pause sign-ins instead, edit the provider and clear Enabled.",
        ]

    def perform(self, form):
        services.delete_provider(self.request.user, self.get_provider(), reason="")

    def get_success_url(self):
        return reverse("saml:provider_list")

    def get_cancel_url(self):
        return reverse("saml:provider_detail", args=[self.kwargs["pk"]])


class MappingFormView(PortalFormView):
    """Create (no mapping pk) or edit a group mapping of a provider."""

    permission = FULL
    form_class = GroupMappingForm
    template_name = "sso/mapping_form.html"
    success_message = "Group mapping saved. It applies at each person's next sign-in."

    def get_provider(self):
        if not hasattr(self, "_provider"):
            self._provider = get_owned_or_404(
                self.request.user, SamlIdentityProvider.objects.all(), self.kwargs["pk"]
            )
        return self._provider

    def get_mapping(self):
        mapping_pk = self.kwargs.get("mapping_pk")
        if mapping_pk is None:
            return None
        return get_object_or_404(SamlGroupMapping, pk=mapping_pk, provider=self.get_provider())

    def get_form_kwargs(self):
        kwargs = super().get_form_kwargs()
        kwargs["owner"] = self.request.user.owner
        kwargs["instance"] = self.get_mapping()
        return kwargs

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["provider"] = self.get_provider()
        context["mapping"] = self.get_mapping()
        return context

    def perform(self, form):
        return services.save_group_mapping(
            self.request.user, self.get_provider(), self.get_mapping(), form.cleaned_data, reason=""
        )

    def get_success_url(self):
        return reverse("saml:provider_detail", args=[self.kwargs["pk"]])


class MappingDeleteView(MappingFormView):
    template_name = "components/confirm.html"
    form_class = forms.Form
    success_message = "Group mapping deleted. It applies at each person's next sign-in."

    def get_form_kwargs(self):
        # A bare confirmation form: none of the mapping form's owner and instance arguments.
        return PortalFormView.get_form_kwargs(self)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        mapping = self.get_mapping()
        context.update(
            title="Delete group mapping",
            question=f"Delete the mapping of {mapping.idp_group}?",
            consequences=[
                "People in this group lose the role and role groups it gives at their next sign-in."
            ],
            confirm_label="Delete mapping",
            cancel_url=self.get_success_url(),
        )
        return context

    def perform(self, form):
        services.delete_group_mapping(
            self.request.user, self.get_provider(), self.get_mapping(), reason=""
        )
