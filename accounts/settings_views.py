"""Screens of the owner's settings lists: departments, update reasons, commission profiles.

Each list has the same five screens (list, create, rename, retire, restore), guarded by its own
catalog area; `settings_list_urls` builds them for one list.
"""

from __future__ import annotations

from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.db.models import Count
from django.urls import path, reverse
from django.views.generic import TemplateView

from portal.generic import PortalConfirmView, PortalFormView, PortalMixin
from portal.navigation import Screen
from portal.owned import get_owned_or_404
from roles import catalog

from . import services
from .forms import SettingsItemForm
from .models import CommissionProfile, Department, SettingsListItem, UpdateReason, User


@dataclass(frozen=True)
class SettingsList:
    """One settings list: its model, the area guarding it, and how its entries are named."""

    slug: str  # URL segment
    prefix: str  # URL name prefix
    model: type[SettingsListItem]
    area: str
    title: str
    singular: str
    description: str

    def url(self, action: str, *args) -> str:
        return reverse(f"accounts:{self.prefix}_{action}", args=args)

    @property
    def url_create(self) -> str:
        return self.url("create")

    @property
    def rename_url(self) -> str:
        return f"accounts:{self.prefix}_rename"

    @property
    def retire_url(self) -> str:
        return f"accounts:{self.prefix}_retire"

    @property
    def restore_url(self) -> str:
        return f"accounts:{self.prefix}_restore"

    def usage(self, owner) -> dict[int, int]:
        """Return {entry id: number of users that use it} (grouped counts, no per-row query)."""
        users = User.objects.for_owner(owner)
        if self.model is Department:
            through = User.departments.through
            rows = (
                through.objects.filter(user__owner=owner)
                .values_list("department_id")
                .annotate(n=Count("user_id"))
            )
            return dict(rows)
        if self.model is CommissionProfile:
            counts: dict[int, int] = {}
            for field in (
                "one_off_commission_profile",
                "recurring_commission_profile",
                "call_commission_profile",
            ):
                rows = (
                    users.filter(**{f"{field}__isnull": False})
                    .values_list(field)
                    .annotate(n=Count("id"))
                    .order_by()
                )
                for pk, n in rows:
                    counts[pk] = counts.get(pk, 0) + n
            return counts
        return {}

    @property
    def counts_usage(self) -> bool:
        return self.model is not UpdateReason


LISTS = (
    SettingsList(
        "departments",
        "department",
        Department,
        catalog.DEPARTMENTS,
        "Departments",
        "department",
        "The departments users belong to.",
    ),
    SettingsList(
        "update-reasons",
        "update_reason",
        UpdateReason,
        catalog.UPDATE_REASONS,
        "Update reasons",
        "update reason",
        "The reasons offered when a user record is changed.",
    ),
    SettingsList(
        "commission-profiles",
        "commission_profile",
        CommissionProfile,
        catalog.COMMISSION_PROFILES,
        "Commission profiles",
        "commission profile",
        "The profiles a user's commission details point to.",
    ),
)


class SettingsListMixin(PortalMixin):
    config: SettingsList

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["config"] = self.config
        context["list_url"] = self.config.url("list")
        context["can_change"] = self.request.permissions.has(self.config.area, catalog.FULL)
        return context


class SettingsItemListView(SettingsListMixin, TemplateView):
    """List the entries, in use first, with how many users use each."""

    template_name = "accounts/settings_item_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        owner = self.request.user.owner
        items = list(self.config.model.objects.for_owner(owner).order_by("retired", "name"))
        usage = self.config.usage(owner)
        for item in items:
            item.usage = usage.get(item.pk, 0)
        context["items"] = items
        return context


class SettingsItemCreateView(SettingsListMixin, PortalFormView):
    """Add an entry to the list."""

    form_class = SettingsItemForm
    template_name = "accounts/settings_item_form.html"

    def perform(self, form):
        item = services.create_settings_item(
            self.config.model, actor=self.request.user, name=form.cleaned_data["name"], reason=""
        )
        messages.success(self.request, f"Added {item.name}.")
        return item

    def get_success_url(self):
        return self.config.url("list")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["heading"] = f"New {self.config.singular}"
        return context


class SettingsItemMixin(SettingsListMixin):
    def dispatch(self, request, *args, **kwargs):
        if request.user.is_authenticated:
            self.item = get_owned_or_404(
                request.user, self.config.model.objects.all(), kwargs["pk"]
            )
        return super().dispatch(request, *args, **kwargs)

    def get_success_url(self):
        return self.config.url("list")


class SettingsItemRenameView(SettingsItemMixin, PortalFormView):
    """Rename an entry; the records that use it show the new name."""

    form_class = SettingsItemForm
    template_name = "accounts/settings_item_form.html"

    def get_initial(self):
        return {"name": self.item.name}

    def perform(self, form):
        old = self.item.name
        services.rename_settings_item(
            self.item, actor=self.request.user, name=form.cleaned_data["name"], reason=""
        )
        if old != self.item.name:
            messages.success(self.request, f"Renamed {old} to {self.item.name}.")

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["heading"] = f"Rename {self.item.name}"
        context["item"] = self.item
        return context


class SettingsItemRetireView(SettingsItemMixin, PortalConfirmView):
    """Retire an entry: kept on the records that use it, offered no more."""

    form_class = forms.Form
    confirm_label = "Retire"
    retired = True

    def get_context_data(self, **kwargs):
        verb = "Retire" if self.retired else "Restore"
        self.title = f"{verb} {self.item.name}"
        self.question = f"{verb} the {self.config.singular} {self.item.name}?"
        return super().get_context_data(**kwargs)

    def consequences(self):
        if self.retired:
            return [
                "Records that use it keep it and show it.",
                "It is no longer offered when users are created or changed.",
                "You can restore it later.",
            ]
        return ["It is offered again when users are created or changed."]

    def perform(self, form):
        services.set_settings_item_retired(
            self.item, actor=self.request.user, retired=self.retired, reason=""
        )
        messages.success(
            self.request, f"{'Retired' if self.retired else 'Restored'} {self.item.name}."
        )


class SettingsItemRestoreView(SettingsItemRetireView):
    """Offer a retired entry again."""

    confirm_label = "Restore"
    retired = False


def settings_list_urls(config: SettingsList) -> list:
    """Return the URL patterns of one settings list, each view guarded by the list's area."""
    read = (config.area, catalog.READ)
    full = (config.area, catalog.FULL)

    def view(base, permission):
        name = f"{config.model.__name__}{base.__name__.removeprefix('SettingsItem')}"
        cls = type(name, (base,), {"config": config, "permission": permission})
        return cls.as_view()

    prefix = f"settings/{config.slug}/"
    return [
        path(prefix, view(SettingsItemListView, read), name=f"{config.prefix}_list"),
        path(f"{prefix}new/", view(SettingsItemCreateView, full), name=f"{config.prefix}_create"),
        path(
            f"{prefix}<int:pk>/rename/",
            view(SettingsItemRenameView, full),
            name=f"{config.prefix}_rename",
        ),
        path(
            f"{prefix}<int:pk>/retire/",
            view(SettingsItemRetireView, full),
            name=f"{config.prefix}_retire",
        ),
        path(
            f"{prefix}<int:pk>/restore/",
            view(SettingsItemRestoreView, full),
            name=f"{config.prefix}_restore",
        ),
    ]


def settings_screens() -> list[Screen]:
    return [
        Screen(
            f"accounts:{config.prefix}_list",
            config.title,
            "Settings",
            config.area,
            catalog.READ,
            config.description,
        )
        for config in LISTS
    ]
