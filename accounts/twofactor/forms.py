"""Forms of two-factor sign-in, device management, recovery and the recovery console."""

from __future__ import annotations

from django import forms

from ..recovery import IDENTITY_CHECKS

CODE_ATTRS = {"autocomplete": "one-time-code", "autocapitalize": "none", "spellcheck": "false"}


class VerifyForm(forms.Form):
    """The second step of sign-in: a code from the app, or a backup code."""

    code = forms.CharField(
        label="Code",
        max_length=32,
        help_text="The 6 digits your authenticator app shows, or one of your backup codes.",
        widget=forms.TextInput(attrs={**CODE_ATTRS, "autofocus": True}),
    )


class EnrolForm(forms.Form):
    """The first code from a newly scanned app, which confirms the device."""

    code = forms.CharField(
        label="Code from your app",
        max_length=10,
        help_text="Type the 6 digits your authenticator app shows now.",
        widget=forms.TextInput(attrs={**CODE_ATTRS, "inputmode": "numeric"}),
    )


class RemoveDeviceForm(forms.Form):
    """Proof before a person removes their own device: their password or a current code."""

    password = forms.CharField(
        label="Your password",
        required=False,
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    code = forms.CharField(
        label="Or a code from your app",
        required=False,
        max_length=10,
        widget=forms.TextInput(attrs={**CODE_ATTRS, "inputmode": "numeric"}),
    )

    def clean(self):
        data = super().clean()
        if not data.get("password") and not data.get("code"):
            raise forms.ValidationError("Enter your password or a code from your app.")
        return data


class ReasonForm(forms.Form):
    """A required reason for a support action, kept in the audit log."""

    reason = forms.CharField(
        label="Reason",
        max_length=300,
        help_text="Kept in the audit log, for example the support ticket number.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )


class RecoverForm(forms.Form):
    """The public recovery page: the email address on the account and the emailed code."""

    email = forms.EmailField(
        label="Email address",
        max_length=254,
        widget=forms.EmailInput(attrs={"autocomplete": "email", "autofocus": True}),
    )
    code = forms.CharField(
        label="Recovery code",
        max_length=32,
        help_text="From the email our support team sent you, like abcd-efgh-jkmn.",
        widget=forms.TextInput(attrs=CODE_ATTRS),
    )


class NewPasswordForm(forms.Form):
    """A new password typed twice; the owner's policy is checked by the service."""

    new_password1 = forms.CharField(
        label="New password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password2 = forms.CharField(
        label="New password again",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def clean(self):
        data = super().clean()
        first, second = data.get("new_password1"), data.get("new_password2")
        if first and second and first != second:
            self.add_error("new_password2", "The two passwords differ.")
        return data


class ConsoleForm(forms.Form):
    """The recovery console: identity checks (all required), a reason and the actions to run."""

    checked_identity = forms.BooleanField(
        label="I verified the person's identity through a channel on record (call-back to a "
        "known number, or their manager), not only the contact that reached us.",
    )
    checked_email = forms.BooleanField(
        label="The person confirmed the email address on this account, and it is theirs.",
    )
    checked_request = forms.BooleanField(
        label="The person asked for exactly this action, and the ticket records it.",
    )
    reason = forms.CharField(
        label="Reason",
        max_length=300,
        help_text="Kept in the audit log, for example the support ticket number.",
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
    )
    action = forms.MultipleChoiceField(
        label="Actions",
        widget=forms.CheckboxSelectMultiple,
        help_text="Choose one or more; they run together after you confirm, or none of them do.",
        error_messages={
            "required": "Choose at least one action.",
            # Offered a moment ago, but the account changed since (someone cleared the lockout).
            "invalid_choice": "A chosen action no longer applies to this account (it changed "
            "meanwhile): check where it stands above and choose again.",
        },
    )

    def __init__(self, *args, actions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = list(actions)

    def identity_checks(self) -> list[str]:
        """Return the names of the identity checks that were ticked."""
        return [name for name in IDENTITY_CHECKS if self.cleaned_data.get(name)]
