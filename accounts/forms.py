"""Forms of the accounts app: sign-in, users, settings lists, set password, list filters."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.db.models import Q

from roles import guards
from roles.models import Role, RoleGroup

from . import users
from .choices import AuthSource, UserKind
from .models import CommissionProfile, Department, UpdateReason, User


class SignInForm(forms.Form):
    """Login (username or email) and password."""

    login = forms.CharField(
        label="Username or email",
        max_length=254,
        # "webauthn": the browser also offers the person's passkeys here (conditional mediation).
        widget=forms.TextInput(attrs={"autocomplete": "username webauthn", "autofocus": True}),
    )
    password = forms.CharField(
        label="Password",
        max_length=1024,
        strip=False,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )


def _time_zone_choices():
    return [(name, name) for name in sorted(zoneinfo.available_timezones())]


def _active_or(queryset, selected_ids):
    """Offer the active entries, plus retired ones the record already uses (kept, not lost)."""
    return queryset.filter(Q(retired=False) | Q(pk__in=list(selected_ids)))


def reason_field(owner, *, required: bool) -> forms.Field:
    """Return the Update Reason field: the owner's active list, or free text when it is empty."""
    reasons = UpdateReason.objects.for_owner(owner).active()
    if reasons.exists():
        return forms.ModelChoiceField(
            queryset=reasons,
            required=required,
            label="Update Reason",
            empty_label="Choose a reason",
        )
    return forms.CharField(
        label="Update Reason",
        required=required,
        max_length=300,
        help_text="Your organisation has no Update Reason list yet; describe the reason.",
    )


def reason_text(value) -> str:
    """Return the text stored on the audit event for a reason field's cleaned value."""
    return str(value) if value else ""


class _SomeChoicesDisabled:
    """A choice widget whose options with a value in `disabled` are shown but cannot be picked."""

    disabled: frozenset[str] = frozenset()

    def create_option(self, name, value, label, selected, index, subindex=None, attrs=None):
        option = super().create_option(name, value, label, selected, index, subindex, attrs)
        if str(value) in self.disabled:
            option["attrs"]["disabled"] = True
        return option


class SelectSomeDisabled(_SomeChoicesDisabled, forms.Select):
    pass


class CheckboxesSomeDisabled(_SomeChoicesDisabled, forms.CheckboxSelectMultiple):
    pass


def _needs(found) -> str:
    """Return why an option is not offered: "needs Tariffs full (and 97 more areas)"."""
    more = len(found) - 1
    return f"needs {found[0].needs}" + (f" and {more} more area{'s' * (more > 1)}" if more else "")


class UserForm(forms.ModelForm):
    """A user's record: details, access, departments and commission, in sections.

    Querysets are scoped to the owner; uniqueness of username and email is checked in any letter
    case across the whole portal (the database constraint covers every owner).
    """

    SECTIONS = (
        ("details", "Details", users.DETAIL_FIELDS),
        ("access", "Access", (*users.ACCESS_FIELDS, "extra_role_groups")),
        ("departments", "Departments", ("departments",)),
        ("commission", "Commission", users.COMMISSION_FIELDS),
    )

    time_zone = forms.ChoiceField(choices=_time_zone_choices, initial="UTC")

    class Meta:
        model = User
        fields = list(users.EDITABLE_FIELDS)
        widgets = {
            "commission_reference_date": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "role": SelectSomeDisabled,
            "extra_role_groups": CheckboxesSomeDisabled,
            "departments": forms.CheckboxSelectMultiple,
            "username": forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
            "email": forms.EmailInput(attrs={"autocomplete": "off"}),
        }
        labels = {
            "username": "Username",
            "allow_login": "Login flag",
            "allow_api_read": "API read",
            "allow_api_write": "API write",
            "allow_email_reports": "Email reports",
        }
        help_texts = {
            "kind": "API users call the API with tokens and never sign in to the screens.",
            "auth_source": "SSO users sign in through the identity provider, never with a "
            "local password.",
            "allow_login": "May sign in to the application. Always off for API users.",
            "role": "The business function; it brings its role groups.",
            "extra_role_groups": "Groups on top of the role's, for this user only.",
            "privilege_level": "Nobody can set a level above their own.",
        }

    def __init__(self, *args, owner, actor=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        instance = self.instance
        has_pk = instance.pk is not None
        self.fields["role"].queryset = Role.objects.for_owner(owner)
        self.fields["extra_role_groups"].queryset = RoleGroup.objects.for_owner(owner)
        if actor is not None:
            self._offer_only_what_actor_may_grant(actor)
        selected_departments = instance.departments.values_list("pk", flat=True) if has_pk else []
        self.fields["departments"].queryset = _active_or(
            Department.objects.for_owner(owner), selected_departments
        )
        for name in (
            "one_off_commission_profile",
            "recurring_commission_profile",
            "call_commission_profile",
        ):
            current = [getattr(instance, f"{name}_id")] if has_pk else []
            self.fields[name].queryset = _active_or(
                CommissionProfile.objects.for_owner(owner), [c for c in current if c]
            )
        self.fields["username"].validators.append(UnicodeUsernameValidator())
        self.fields["username"].help_text = "Used to sign in. Letters, digits and @ . + - _ only."
        self.fields["role"].empty_label = "No role"

    def _offer_only_what_actor_may_grant(self, actor) -> None:
        """Offer what the writer would accept from `actor` (see `accounts.users`).

        Roles and role groups whose grants exceed the actor's own levels stay in the list,
        disabled, with what they need; privilege and expert levels above the actor's are not
        offered. What the user already has stays available: keeping it is no grant.
        """
        if actor.is_superuser:
            return
        instance = self.instance
        group_needs, role_needs = guards.grant_shortfalls(actor, self.owner)
        current_groups = (
            set(instance.extra_role_groups.values_list("pk", flat=True)) if instance.pk else set()
        )
        for name, needs, current in (
            ("role", role_needs, {instance.role_id}),
            ("extra_role_groups", group_needs, current_groups),
        ):
            if name not in self.fields:
                continue
            field = self.fields[name]
            blocked = {pk: found for pk, found in needs.items() if pk not in current}
            field.widget.disabled = frozenset(str(pk) for pk in blocked)
            field.label_from_instance = lambda obj, blocked=blocked: (
                f"{obj.name} ({_needs(blocked[obj.pk])})" if obj.pk in blocked else obj.name
            )
        for name, own in (
            ("privilege_level", actor.privilege_level),
            ("expert_level", actor.expert_level),
        ):
            if name not in self.fields:
                continue
            field = self.fields[name]
            current = getattr(instance, name) if instance.pk else None
            field.choices = [
                (value, label)
                for value, label in field.choices
                if value == "" or int(value) <= own or value == current
            ]
            field.help_text = f"Up to your own level, {own}."
            field.error_messages["invalid_choice"] = f"Choose a level up to your own ({own})."

    def sections(self):
        """Yield (slug, title, bound fields) for the template, in order."""
        for slug, title, names in self.SECTIONS:
            fields = [self[name] for name in names if name in self.fields]
            if fields:
                yield slug, title, fields

    def clean_username(self):
        username = self.cleaned_data["username"].strip()
        others = User.objects.exclude(pk=self.instance.pk) if self.instance.pk else User.objects
        if others.filter(username__ci=username).exists():
            raise forms.ValidationError("This username is already taken. Choose another.")
        return username

    def clean_email(self):
        email = User.objects.normalize_email(self.cleaned_data["email"].strip())
        others = User.objects.exclude(pk=self.instance.pk) if self.instance.pk else User.objects
        if others.filter(email__ci=email).exists():
            raise forms.ValidationError("Another user already has this email address.")
        return email

    def validate_constraints(self):
        """Uniqueness is checked by the clean methods above, with messages beside the fields."""

    def service_data(self) -> dict:
        """Return the cleaned values of the record's fields, as the services take them."""
        return {name: self.cleaned_data[name] for name in self._meta.fields if name in self.fields}


class UserCreateForm(UserForm):
    """Create a user: every section; the person gets a password through the access email."""


class UserEditForm(UserForm):
    """Edit a user: the Login flag has its own deactivate / reactivate actions; every save names
    an Update Reason and may add Update Details; `row_version` detects concurrent saves."""

    row_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)
    update_details = forms.CharField(
        label="Update Details",
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Optional: anything the next reader of the audit log should know.",
    )

    class Meta(UserForm.Meta):
        fields = [f for f in users.EDITABLE_FIELDS if f != "allow_login"]

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, owner=owner, **kwargs)
        self.fields["update_reason"] = reason_field(owner, required=True)
        if not self.is_bound:
            self.initial["row_version"] = self.instance.row_version
        for name in users.idp_managed_fields(self.instance) & set(self.fields):
            field = self.fields[name]
            field.disabled = True
            field.help_text = "Set by the identity provider at every sign-in (read-only here)."


class LoginFlagForm(forms.Form):
    """Deactivate or reactivate: the reason and details of the change."""

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["update_reason"] = reason_field(owner, required=True)
        self.fields["update_details"] = forms.CharField(
            label="Update Details", required=False, max_length=2000, widget=forms.Textarea
        )


class BulkDeactivateForm(forms.Form):
    """Deactivate the users ticked on the list."""

    users = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        error_messages={"required": "Tick at least one user to deactivate."},
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["users"].queryset = User.objects.for_owner(owner).select_related("owner")
        self.fields["update_reason"] = reason_field(owner, required=True)


class SettingsItemForm(forms.Form):
    """The name of a settings list entry (uniqueness is checked by the service)."""

    name = forms.CharField(max_length=120, widget=forms.TextInput(attrs={"autocomplete": "off"}))


class SetPasswordForm(forms.Form):
    """Choose a password (the owner's policy applies) and type it again."""

    password1 = forms.CharField(
        label="New password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password", "autofocus": True}),
        help_text="Use a long passphrase; any characters, spaces and emoji are welcome.",
    )
    password2 = forms.CharField(
        label="New password again",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        cleaned = super().clean()
        first, second = cleaned.get("password1"), cleaned.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ. Type the same one twice.")
        return cleaned


LOGIN_CHOICES = [("", "Any"), ("yes", "Can sign in"), ("no", "Deactivated")]
STATUS_CHOICES = [
    ("", "Any"),
    ("account_manager", "Account manager"),
    ("commission_holder", "Commission holder"),
]


class UserFilterForm(forms.Form):
    """Search and filters of the users list; extra filters come from `listing.USER_FILTERS`."""

    q = forms.CharField(
        label="Search",
        required=False,
        max_length=100,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Name, username or email"}),
    )
    role = forms.ModelChoiceField(queryset=Role.objects.none(), required=False, empty_label="Any")
    kind = forms.ChoiceField(choices=[("", "Any"), *UserKind.choices], required=False)
    login = forms.ChoiceField(label="Login", choices=LOGIN_CHOICES, required=False)
    status = forms.ChoiceField(choices=STATUS_CHOICES, required=False)
    department = forms.ModelChoiceField(
        queryset=Department.objects.none(), required=False, empty_label="Any"
    )
    auth_source = forms.ChoiceField(
        label="Auth source", choices=[("", "Any"), *AuthSource.choices], required=False
    )

    def __init__(self, *args, owner, **kwargs):
        from .listing import USER_FILTERS

        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = Role.objects.for_owner(owner)
        self.fields["department"].queryset = Department.objects.for_owner(owner)
        for extra in USER_FILTERS:
            self.fields[extra.name] = extra.field(owner)
