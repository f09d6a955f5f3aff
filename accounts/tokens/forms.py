"""Forms of the API token screens: input only; the rules live in accounts/tokens/services.py."""

from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator

from roles import catalog, permissions

from . import lifecycle, services


class TokenCreateForm(forms.Form):
    """Name, lifetime and scope of a new token for `subject` (the user who will hold it)."""

    name = forms.CharField(
        max_length=120, help_text="Where the token is used, e.g. “Invoice export job”."
    )
    lifetime_days = forms.IntegerField(label="Expires after (days)", min_value=1)
    read_only = forms.BooleanField(
        label="Read only", required=False, help_text="Never write, even if the user may."
    )
    areas = forms.MultipleChoiceField(
        label="Limit to these API areas",
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="Leave all unticked to allow every API area the user holds.",
    )
    allowed_networks = forms.CharField(
        label="Allowed networks",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="One IP address or network (CIDR) per line, e.g. 203.0.113.0/24. "
        "Empty: any address.",
    )

    def __init__(self, *args, subject, **kwargs):
        super().__init__(*args, **kwargs)
        self.subject = subject
        longest = lifecycle.max_days(subject.owner)
        lifetime = self.fields["lifetime_days"]
        lifetime.max_value = longest
        lifetime.validators.append(MaxValueValidator(longest))
        lifetime.widget.attrs["max"] = longest
        lifetime.initial = min(90, longest)
        lifetime.help_text = f"At most {longest} days (your organisation's policy)."
        held = permissions.for_user(subject, catalog.Channel.API)
        self.fields["areas"].choices = [
            (d.area.code, f"{d.area.label} ({d.level})") for d in held.granted()
        ]

    def clean_allowed_networks(self) -> list[str]:
        lines = [p for p in re.split(r"[\s,]+", self.cleaned_data["allowed_networks"]) if p]
        try:
            return services.clean_networks(lines)
        except ValidationError as exc:
            raise ValidationError(exc.message_dict["allowed_networks"]) from exc


class TokenFilterForm(forms.Form):
    """Filters of the token inventory."""

    STATES = [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked"), ("", "All")]

    q = forms.CharField(label="Search", required=False, max_length=100)
    state = forms.ChoiceField(choices=STATES, required=False)
