"""The one field a person types about a passkey: its name (the browser does the rest)."""

from __future__ import annotations

from django import forms

from .services import NAME_MAX


class PasskeyNameForm(forms.Form):
    name = forms.CharField(
        label="Name",
        max_length=NAME_MAX,
        help_text='So you recognise it later, for example "Work laptop" or "Blue YubiKey".',
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
