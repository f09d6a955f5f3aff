"""The endpoint form: input only; the service vets the URL and audits."""

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
