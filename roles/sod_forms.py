"""Forms of the separation-of-duties screens: they read input only; `roles.sod` decides.

A rule's two sides are posted as rows of an area `<select>` (grouped by category) and a level
`<select>`: `left-area-0`, `left-level-0`, `left-area-1`… A row without an area is left out.
"""

from __future__ import annotations

import datetime

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from . import catalog
from .choices import SodEffect, SodJoin
from .forms import area_choices
from .models import SodRule

SIDES = (("left", "First side"), ("right", "Second side"))
DEFAULT_ROWS = 3
MAX_ROWS = 20
RULE_LEVELS = [
    (level, catalog.LEVEL_LABELS[level])
    for level in (catalog.READ, catalog.RUN, catalog.EXECUTE, catalog.APPROVE, catalog.FULL)
]


def posted_rows(data, side: str) -> int:
    """Return how many rows of `side` a posted form carries (at most MAX_ROWS)."""
    prefix = f"{side}-area-"
    indexes = [key[len(prefix) :] for key in data if key.startswith(prefix)]
    return min(MAX_ROWS, 1 + max((int(i) for i in indexes if i.isdigit()), default=-1))


class SodRuleForm(forms.Form):
    """A rule: name, description, two sides of (area, minimum level) rows, effect, reason."""

    name = forms.CharField(max_length=120)
    description = forms.CharField(
        max_length=2000,
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="What the rule protects against, for the people who meet it.",
    )
    left_join = forms.ChoiceField(
        choices=SodJoin.choices, initial=SodJoin.ANY, label="Met when the person holds"
    )
    right_join = forms.ChoiceField(
        choices=SodJoin.choices, initial=SodJoin.ANY, label="Met when the person holds"
    )
    effect = forms.ChoiceField(
        choices=SodEffect.choices,
        initial=SodEffect.BLOCK,
        widget=forms.RadioSelect,
        help_text="An exception is approved by someone other than the person asking, holding "
        "Approve on Access Requests, and ends by itself.",
    )
    reason = forms.CharField(
        max_length=300,
        required=False,
        label="Reason for the change",
        help_text="Optional; kept in the audit log with the change.",
    )
    row_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    def __init__(self, *args, rows: dict[str, int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        rows = rows or {}
        areas = [("", "Choose an area"), *area_choices(catalog.Channel.APPLICATION)]
        self.side_errors: dict[str, list[str]] = {side: [] for side, _ in SIDES}
        self.row_names: dict[str, list[tuple[str, str]]] = {}
        for side, label in SIDES:
            names = []
            for n in range(rows.get(side, DEFAULT_ROWS)):
                area, level = f"{side}-area-{n}", f"{side}-level-{n}"
                self.fields[area] = forms.ChoiceField(
                    choices=areas, required=False, label=f"{label}, area {n + 1}"
                )
                self.fields[level] = forms.ChoiceField(
                    choices=RULE_LEVELS,
                    initial=catalog.FULL,
                    label=f"{label}, minimum level {n + 1}",
                )
                names.append((area, level))
            self.row_names[side] = names

    @staticmethod
    def initial_for(rule: SodRule) -> dict:
        """Return the form's initial values for an existing rule."""
        initial = {
            "name": rule.name,
            "description": rule.description,
            "left_join": rule.left_join,
            "right_join": rule.right_join,
            "effect": rule.effect,
            "row_version": rule.row_version,
        }
        for side in ("left", "right"):
            for n, (area, level) in enumerate(getattr(rule, side)):
                initial[f"{side}-area-{n}"] = area
                initial[f"{side}-level-{n}"] = level
        return initial

    def sides(self):
        """Yield (side, label, [(area field, level field)], errors) for the template."""
        for side, label in SIDES:
            rows = [(self[area], self[level]) for area, level in self.row_names[side]]
            yield {
                "name": side,
                "label": label,
                "join": self[f"{side}_join"],
                "rows": rows,
                "errors": self.side_errors[side],
            }

    def clean(self):
        data = super().clean()
        for side, _ in SIDES:
            data[side] = [
                (data[area], data.get(level) or catalog.FULL)
                for area, level in self.row_names[side]
                if data.get(area)
            ]
        return data

    def rule_data(self) -> dict:
        """Return what `sod.save_rule` takes."""
        data = self.cleaned_data
        keys = ("name", "description", "left", "left_join", "right", "right_join", "effect")
        return {key: data[key] for key in keys}

    def show_errors(self, errors: dict[str, list[str]]) -> None:
        """Put a service's errors ({field: messages}) beside the fields they name; a side's go
        beside its rows."""
        for field, messages in errors.items():
            if field in self.side_errors:
                self.side_errors[field] += list(messages)
                # The form is invalid from now on, as for any other field.
                self._errors.setdefault(field, self.error_class()).extend(messages)
            else:
                self.add_error(field if field in self.fields else None, messages)


def _person_of(owner, login: str):
    login = (login or "").strip()
    if not login:
        return None
    User = get_user_model()
    return (
        User.objects.filter(owner=owner)
        .filter(Q(username__iexact=login) | Q(email__iexact=login))
        .order_by("pk")
        .first()
    )


class PersonField(forms.CharField):
    """A person of the owner named by username or email (a select of every user would not do at
    100,000 users)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("max_length", 254)
        kwargs.setdefault(
            "widget", forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"})
        )
        super().__init__(*args, **kwargs)
        self.owner = None

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        person = _person_of(self.owner, value)
        if person is None:
            raise forms.ValidationError(
                f"Nobody in your organisation has the username or email “{value}”."
            )
        return person


def default_expiry() -> datetime.datetime:
    return (timezone.localtime() + datetime.timedelta(days=30)).replace(second=0, microsecond=0)


class SodExceptionForm(forms.Form):
    """Approve an exception: who, under which rule, who asked, why and until when."""

    rule = forms.ModelChoiceField(
        queryset=SodRule.objects.none(),
        label="Rule",
        help_text="Only rules whose effect is “allow with an approved exception”.",
        error_messages={"invalid_choice": "Choose a rule that takes exceptions."},
    )
    user = PersonField(
        label="Person",
        help_text="Username or email of the person who may hold both sides.",
    )
    requested_by = PersonField(
        label="Asked by",
        help_text="Username or email of the colleague who asked for it: you approve, so "
        "someone else asks (it may be the person themselves).",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Why the combination is needed; kept with the exception and in the audit log.",
        error_messages={"required": "Say why the exception is needed."},
    )
    expires_at = forms.DateTimeField(
        label="Ends at",
        help_text="In your time zone; a year at most. The exception ends by itself then.",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    def __init__(self, *args, owner, approver, **kwargs):
        super().__init__(*args, **kwargs)
        self.approver = approver
        self.fields["rule"].queryset = SodRule.objects.filter(
            owner=owner, effect=SodEffect.EXCEPTION
        ).order_by("name")
        self.fields["user"].owner = owner
        self.fields["requested_by"].owner = owner
        self.fields["expires_at"].initial = default_expiry

    def clean(self):
        data = super().clean()
        asked_by, person = data.get("requested_by"), data.get("user")
        if asked_by is not None and asked_by.pk == self.approver.pk:
            self.add_error(
                "requested_by",
                "You approve this exception, so someone else asks for it: name the colleague "
                "who asked.",
            )
        if person is not None and person.pk == self.approver.pk:
            self.add_error("user", "Nobody approves an exception for themselves.")
        return data
