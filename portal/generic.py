"""Portal view bases: permissions declared, owner scoping, escalation refusals shown on the form.

A screen then reads as a declaration:

    class RoleListView(PortalListView):
        model = Role
        permission = ("settings_user_groups", "read")
        template_name = "roles/role_list.html"
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.views.generic import DetailView, FormView, ListView

from .access import PermissionRequiredMixin
from .forms import apply_service_errors
from .owned import get_owned_or_404


class PortalMixin(PermissionRequiredMixin):
    """Knows the signed-in person's owner and scopes every queryset to it."""

    def get_owner(self):
        return self.request.user.owner

    def scoped(self, queryset):
        return queryset.filter(owner_id=self.request.user.owner_id)


class PortalListView(PortalMixin, ListView):
    paginate_by = 50

    def get_queryset(self):
        return self.scoped(super().get_queryset())


class PortalDetailView(PortalMixin, DetailView):
    def get_object(self, queryset=None):
        queryset = queryset if queryset is not None else self.get_queryset()
        return get_owned_or_404(self.request.user, queryset, self.kwargs.get(self.pk_url_kwarg))


class PortalFormView(PortalMixin, FormView):
    """A form whose valid submission calls `perform(form)`, a service call.

    Refusals raised by the service (escalation, validation) are shown on the form and nothing is
    saved; `success_message` is flashed after a successful perform.
    """

    success_message = ""

    def perform(self, form):  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def form_valid(self, form):
        try:
            self.result = self.perform(form)
        except (PermissionDenied, ValidationError) as exc:
            apply_service_errors(form, exc)
            return self.form_invalid(form)
        if self.success_message:
            messages.success(self.request, self.success_message)
        return super().form_valid(form)

    def form_invalid(self, form):
        response = super().form_invalid(form)
        response.status_code = 400
        return response


class PortalConfirmView(PortalFormView):
    """A confirmation page for a destructive action (components/confirm.html)."""

    template_name = "components/confirm.html"
    title = "Are you sure?"
    question = ""
    confirm_label = "Confirm"

    def consequences(self) -> list[str]:
        return []

    def get_cancel_url(self) -> str:
        return self.get_success_url()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(
            title=self.title,
            question=self.question,
            consequences=self.consequences(),
            confirm_label=self.confirm_label,
            cancel_url=self.get_cancel_url(),
        )
        return context
