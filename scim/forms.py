"""Form of the SCIM token screen: input only; the rules live in scim/tokens.py."""

from __future__ import annotations

from django import forms
from django.core.validators import MaxValueValidator

from accounts.tokens.lifecycle import max_days
from sso.models import SamlIdentityProvider


class ScimTokenForm(forms.Form):
    """Name, lifetime and identity provider of a new SCIM token."""

    name = forms.CharField(max_length=120, help_text="The identity provider, e.g. “Okta”.")
    lifetime_days = forms.IntegerField(label="Expires after (days)", min_value=1)
    provider = forms.ModelChoiceField(
        label="Single sign-on provider",
        queryset=SamlIdentityProvider.objects.none(),
        required=False,
        empty_label="None: do not map groups to roles",
        help_text="Its group mappings turn the provisioned groups into roles and role groups, "
        "and provisioned people sign in through it.",
    )

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        longest = max_days(owner)
        lifetime = self.fields["lifetime_days"]
        lifetime.max_value = longest
        lifetime.validators.append(MaxValueValidator(longest))
        lifetime.widget.attrs["max"] = longest
        lifetime.initial = min(365, longest)
        lifetime.help_text = f"At most {longest} days (your organisation's policy)."
        providers = SamlIdentityProvider.objects.filter(owner=owner).order_by("name")
        self.fields["provider"].queryset = providers
        if providers.count() == 1:
            self.fields["provider"].initial = providers.first().pk
