"""Forms of the permission engine's screens: they validate input only; services decide."""

from __future__ import annotations

from django import forms

from . import catalog
from .choices import RoleGroupKind
from .models import Role, RoleGroup
from .services import check_override_expiry

CELL_PREFIX = "cell-"


class RowVersionMixin(forms.Form):
    row_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class RoleGroupCreateForm(forms.Form):
    name = forms.CharField(max_length=120)
    kind = forms.ChoiceField(
        choices=RoleGroupKind.choices,
        initial=RoleGroupKind.APPLICATION,
        help_text="Application groups open screens; API groups are used by API users' tokens.",
    )
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)


class RoleGroupEditForm(RowVersionMixin):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)
    self_activation = forms.BooleanField(
        required=False,
        label="Self-activation",
        help_text="People eligible for this group activate it themselves, after confirming who "
        "they are, instead of asking someone else to approve.",
    )


class CloneForm(forms.Form):
    name = forms.CharField(max_length=120, label="Name of the copy")


class RoleForm(forms.Form):
    name = forms.CharField(max_length=120)
    description = forms.CharField(max_length=2000, required=False, widget=forms.Textarea)
    role_groups = forms.ModelMultipleChoiceField(
        queryset=RoleGroup.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="A user holding this role reaches the highest level any of these groups gives.",
    )
    eligible_role_groups = forms.ModelMultipleChoiceField(
        queryset=RoleGroup.objects.none(),
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Eligible role groups",
        help_text="Never standing: a holder may ask for one of these for a few hours, and someone "
        "else approves it (or, for a self-activating group, they confirm who they are).",
    )
    reason = forms.CharField(
        max_length=300,
        required=False,
        label="Reason for the change",
        help_text="Optional; kept in the audit log with the change.",
    )
    row_version = forms.IntegerField(widget=forms.HiddenInput, required=False)
    previewed = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        groups = RoleGroup.objects.filter(owner=owner).order_by("-kind", "name")
        for name in ("role_groups", "eligible_role_groups"):
            field = self.fields[name]
            field.queryset = groups
            field.label_from_instance = lambda g: f"{g.name} (API)" if g.kind == "api" else g.name

    def clean(self):
        data = super().clean()
        both = set(data.get("role_groups") or ()) & set(data.get("eligible_role_groups") or ())
        if both:
            names = ", ".join(sorted(g.name for g in both))
            self.add_error(
                "eligible_role_groups",
                f"The role already grants {names}; a group is either granted or eligible.",
            )
        return data


def parse_cells(data, channel: str) -> tuple[dict[str, str], list[str]]:
    """Return ({area: level} posted as `cell-<area>`, problems) for the areas of `channel`."""
    cells, problems = {}, []
    for key in data:
        if not key.startswith(CELL_PREFIX):
            continue
        code, level = key[len(CELL_PREFIX) :], data.get(key)
        area = catalog.BY_CODE.get(code)
        if area is None or area.channel != channel:
            problems.append(f"Unknown area {code!r}.")
        elif not area.is_level(level):
            problems.append(f"{area.label} has no level {level!r}.")
        else:
            cells[code] = level
    return cells, problems


class MatrixForm(forms.Form):
    """A posted matrix: its cells (`cell-<area>`), the version it was read at, the search that
    narrowed it, what to do (preview, save, or `set:<category>` with `category-<category>`
    naming the level) and the reason kept with the change."""

    row_version = forms.IntegerField(
        min_value=1, error_messages={"required": "The form is incomplete; reload the page."}
    )
    action = forms.CharField(required=False, max_length=80)
    q = forms.CharField(required=False, max_length=200)
    reason = forms.CharField(required=False, max_length=300)

    def __init__(self, data, *, channel: str):
        super().__init__(data)
        self.channel = channel

    def clean(self):
        data = super().clean()
        cells, problems = parse_cells(self.data, self.channel)
        for problem in problems:
            self.add_error(None, problem)
        action = data.get("action") or "preview"
        data["cells"] = cells
        data["action"] = "preview"
        data["set_category"] = None
        if action in ("preview", "save"):
            data["action"] = action
        elif action.startswith("set:"):
            data["action"] = "set"  # redraw the matrix with the column filled, nothing saved
            category = action[4:]
            level = self.data.get(f"category-{category}", "")
            data["set_category"] = (category, level)
        return data


def area_choices(channel: str | None = None, *, exclude_data_protection: bool = False):
    """Return choices grouped by category (optgroups) for an area `<select>`."""
    groups = []
    for chan in [channel] if channel else catalog.Channel.ALL:
        for category, label, areas in catalog.by_category(chan):
            if exclude_data_protection and category == catalog.Category.DATA_PROTECTION:
                continue
            groups.append((label, [(a.code, a.label) for a in areas]))
    return groups


ALL_LEVELS = [
    (level, catalog.LEVEL_LABELS[level])
    for level in (catalog.READ, catalog.RUN, catalog.EXECUTE, catalog.WRITE, catalog.FULL)
]


class WhoHasAccessForm(forms.Form):
    area = forms.ChoiceField(choices=area_choices)
    level = forms.ChoiceField(choices=ALL_LEVELS, label="Minimum level", initial=catalog.READ)

    def clean(self):
        data = super().clean()
        area, level = data.get("area"), data.get("level")
        if area and level:
            info = catalog.get(area)
            if not info.is_level(level):
                choices = ", ".join(catalog.LEVEL_LABELS[x].lower() for x in info.levels[1:])
                self.add_error("level", f"{info.label} has no level {level}; choose {choices}.")
        return data


class CompareForm(forms.Form):
    """Two roles or two role groups. Each option names its kind ("group-12", "role-5"), so a
    role and the role group that happens to share its number can never be confused."""

    left = forms.ChoiceField(label="First")
    right = forms.ChoiceField(label="Second")
    only_differences = forms.BooleanField(required=False, label="Only areas that differ")

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        groups = [
            (f"group-{pk}", name)
            for pk, name in RoleGroup.objects.filter(owner=owner).values_list("pk", "name")
        ]
        roles = [
            (f"role-{pk}", name)
            for pk, name in Role.objects.filter(owner=owner).values_list("pk", "name")
        ]
        choices = [("Role groups", groups), ("Roles", roles)]
        self.fields["left"].choices = choices
        self.fields["right"].choices = choices

    def clean(self):
        data = super().clean()
        left, right = data.get("left"), data.get("right")
        if left and right:
            (kind, left_pk), (right_kind, right_pk) = left.split("-"), right.split("-")
            if kind != right_kind:
                self.add_error(
                    "right", "Compare a role with a role, or a role group with a role group."
                )
            else:
                data["model"] = Role if kind == "role" else RoleGroup
                data["left_pk"], data["right_pk"] = int(left_pk), int(right_pk)
        return data


class RoleModelImportForm(forms.Form):
    file = forms.FileField(
        required=False,
        label="Role model file (JSON)",
        help_text="A file exported from the Export button of this screen, here or elsewhere.",
    )
    text = forms.CharField(
        required=False,
        widget=forms.Textarea,
        label="Or paste the JSON",
        max_length=2_000_000,
    )

    def clean(self):
        data = super().clean()
        upload = data.get("file")
        if upload is not None:
            if upload.size > 2_000_000:
                raise forms.ValidationError("The file is larger than 2 MB.")
            try:
                data["document"] = upload.read().decode("utf-8")
            except UnicodeDecodeError as exc:
                raise forms.ValidationError("The file is not UTF-8 text.") from exc
        elif data.get("text", "").strip():
            data["document"] = data["text"]
        else:
            raise forms.ValidationError("Choose a file or paste the JSON.")
        return data


class OverrideForm(forms.Form):
    area = forms.ChoiceField()
    level = forms.ChoiceField(
        choices=[(catalog.NONE, catalog.LEVEL_LABELS[catalog.NONE]), *ALL_LEVELS],
        help_text="No access denies the area whatever the groups give.",
    )
    reason = forms.CharField(max_length=500, help_text="Recorded in the audit log.")
    expires_at = forms.DateTimeField(
        required=False,
        label="Expires at",
        help_text="Optional: after this time the override stops counting by itself.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    previewed = forms.CharField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, exclude_data_protection: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["area"].choices = area_choices(exclude_data_protection=exclude_data_protection)

    def clean_expires_at(self):
        expires_at = self.cleaned_data.get("expires_at")
        try:
            check_override_expiry(expires_at)
        except forms.ValidationError as exc:
            raise forms.ValidationError(exc.message_dict["expires_at"]) from exc
        return expires_at

    def clean(self):
        data = super().clean()
        area, level = data.get("area"), data.get("level")
        if area and level and not catalog.get(area).is_level(level):
            info = catalog.get(area)
            choices = ", ".join(catalog.LEVEL_LABELS[x].lower() for x in info.levels)
            self.add_error("level", f"{info.label} has no level {level}; choose {choices}.")
        return data

    def fingerprint(self) -> str:
        d = self.cleaned_data
        return f"{d['area']}:{d['level']}:{d.get('expires_at') or ''}"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        help_text="Recorded in the audit log.",
        error_messages={"required": "Say why; the reason is kept in the audit log."},
    )


# Just-in-time access ------------------------------------------------------------------------


class _GroupChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj):
        how = "you activate it yourself" if obj.self_activation else "someone else approves"
        kind = ", API" if obj.kind == RoleGroupKind.API else ""
        return f"{obj.name} ({how}{kind})"


def _hours_field(limit: int, **kwargs) -> forms.IntegerField:
    message = f"Choose between 1 and {limit} hours (your organisation's maximum)."
    return forms.IntegerField(
        min_value=1,
        max_value=limit,
        error_messages={"min_value": message, "max_value": message, "invalid": message},
        widget=forms.NumberInput(attrs={"min": 1, "max": limit}),
        **kwargs,
    )


class AccessRequestForm(forms.Form):
    """Ask for one eligible role group for a few hours, now or from a later moment."""

    START_CHOICES = [("now", "Now"), ("later", "Later")]

    role_group = _GroupChoiceField(
        queryset=RoleGroup.objects.none(),
        empty_label=None,
        label="Role group",
        error_messages={"invalid_choice": "Choose a role group you are eligible for."},
    )
    start = forms.ChoiceField(
        choices=START_CHOICES, initial="now", widget=forms.RadioSelect, label="Start"
    )
    starts_at = forms.DateTimeField(
        required=False,
        label="Start at",
        help_text="Only with a later start; in your time zone.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    hours = forms.IntegerField()  # replaced in __init__ with the owner's maximum
    justification = forms.CharField(
        max_length=1000,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What you need it for. Approvers read this; the audit log keeps it.",
        error_messages={"required": "Say why you need it; approvers read this."},
    )
    ticket = forms.CharField(
        max_length=120, required=False, label="Ticket reference", help_text="Optional."
    )

    def __init__(self, *args, groups, max_hours: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role_group"].queryset = RoleGroup.objects.filter(
            pk__in=[g.pk for g in groups]
        ).order_by("name")
        self.fields["hours"] = _hours_field(
            max_hours, initial=1, help_text=f"1 to {max_hours}; it ends by itself then."
        )

    def clean(self):
        data = super().clean()
        if data.get("start") == "later":
            if not data.get("starts_at") and "starts_at" not in self.errors:
                self.add_error("starts_at", "Choose when it starts, or start now.")
        else:
            data["starts_at"] = None
        return data


class EmergencyAccessForm(forms.Form):
    """Break-glass: activate an eligible role group at once, with the emergency as the reason."""

    role_group = _GroupChoiceField(
        queryset=RoleGroup.objects.none(),
        empty_label=None,
        label="Role group",
        error_messages={"invalid_choice": "Choose a role group you are eligible for."},
    )
    hours = forms.IntegerField()
    justification = forms.CharField(
        max_length=1000,
        label="Reason",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="What the emergency is. Every approver is emailed at once.",
        error_messages={"required": "Say what the emergency is."},
    )

    def __init__(self, *args, groups, max_hours: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role_group"].queryset = RoleGroup.objects.filter(
            pk__in=[g.pk for g in groups]
        ).order_by("name")
        self.fields["hours"] = _hours_field(max_hours, initial=1)


class ApproveForm(forms.Form):
    hours = forms.IntegerField(
        required=False,
        min_value=1,
        label="Hours",
        help_text="Leave empty to approve the whole window asked for; fewer hours shorten it.",
    )
    note = forms.CharField(
        max_length=500,
        required=False,
        label="Note to the requester",
        help_text="Optional; emailed with the approval and kept in the audit log.",
    )
    row_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class DenyForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="The requester is told; the audit log keeps it.",
        error_messages={"required": "Say why; the requester is told."},
    )
    row_version = forms.IntegerField(widget=forms.HiddenInput, min_value=1)


class EndElevationForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        required=False,
        help_text="Kept in the audit log.",
    )


class EligibilityForm(forms.Form):
    """Make one user eligible for one role group."""

    role_group = forms.ModelChoiceField(
        queryset=RoleGroup.objects.none(),
        label="Role group",
        error_messages={"invalid_choice": "Choose a role group of your organisation."},
    )
    reason = forms.CharField(
        max_length=500,
        help_text="Why this person may ask for it; kept in the audit log.",
        error_messages={"required": "Say why this person may ask for it."},
    )

    def __init__(self, *args, owner, exclude=(), **kwargs):
        super().__init__(*args, **kwargs)
        field = self.fields["role_group"]
        field.queryset = (
            RoleGroup.objects.filter(owner=owner).exclude(pk__in=exclude).order_by("-kind", "name")
        )
        field.label_from_instance = lambda g: f"{g.name} (API)" if g.kind == "api" else g.name
