"""The endpoint and secret rotation forms: input only; the services vet and audit."""

from django import forms

from .choices import EventType


class EndpointForm(forms.Form):
    name = forms.CharField(max_length=120)
    url = forms.URLField(
        max_length=500,
        label="URL",
        assume_scheme="https",
        help_text="An https:// address on the public internet that accepts POST requests.",
    )
    event_types = forms.MultipleChoiceField(
        choices=EventType.choices, widget=forms.CheckboxSelectMultiple, label="Events"
    )
    enabled = forms.BooleanField(required=False, initial=True)
    reason = forms.CharField(
        max_length=300,
        help_text="Why the endpoint is registered or changed (kept in the audit log).",
    )


class RotateSecretForm(forms.Form):
    overlap_hours = forms.IntegerField(
        min_value=1,
        max_value=168,
        initial=24,
        label="Overlap (hours)",
        help_text=(
            "For this long every delivery is signed with both the new and the previous secret, "
            "so your receiver can switch without refusing one (1 to 168 hours)."
        ),
    )
    reason = forms.CharField(
        max_length=300, help_text="Why the secret is rotated (kept in the audit log)."
    )


class FinishRotationForm(forms.Form):
    reason = forms.CharField(
        max_length=300,
        help_text="Why the previous secret stops signing now (kept in the audit log).",
    )


class RemoveEndpointForm(forms.Form):
    reason = forms.CharField(
        max_length=300, help_text="Why the endpoint is removed (kept in the audit log)."
    )
