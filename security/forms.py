"""Forms of the security app: they validate input; the services apply the rules and save."""

from __future__ import annotations

from django import forms
from django.contrib.auth.password_validation import validate_password

from roles.elevations import MAX_HOURS_CEILING

from .models import PasswordPolicy, SignInRestriction
from .services import POLICY_FIELDS


class PasswordPolicyForm(forms.ModelForm):
    """The owner's password, lockout and session rules (the floors are checked by the model)."""

    row_version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        label="Why the policy changes",
        max_length=300,
        help_text="Kept in the audit log with the change.",
        error_messages={
            "required": "Say why the policy changes; the reason is kept in the audit log."
        },
    )

    class Meta:
        model = PasswordPolicy
        fields = list(POLICY_FIELDS)
        labels = {
            "min_length": "Minimum length",
            "require_upper": "Require an upper-case letter",
            "require_lower": "Require a lower-case letter",
            "require_digit": "Require a digit",
            "require_symbol": "Require a symbol",
            "allowed_characters": "Allowed characters",
            "history_depth": "Previous passwords that cannot be reused",
            "expiry_days": "Password expiry (days)",
            "lockout_threshold": "Failed sign-ins before lockout",
            "lockout_minutes": "Lockout duration (minutes)",
            "idle_timeout_minutes": "Idle session timeout (minutes)",
            "absolute_timeout_hours": "Longest session (hours)",
            "require_2fa": "Require two-factor authentication",
            "max_token_days": "Longest API token lifetime (days)",
            "allow_passwordless": "Allow passwordless sign-in with a passkey",
            "require_phishing_resistant": "Require phishing-resistant sign-in for privileged users",
            "notify_new_sign_in": "Email people about sign-ins from a new device or country",
        }
        help_texts = {
            "min_length": "At least 15, or at least 8 when two-factor authentication is required.",
            "history_depth": "0 = no history check.",
            "lockout_minutes": "0 = locked until an administrator clears it.",
            "idle_timeout_minutes": "A session without activity for this long ends.",
            "absolute_timeout_hours": "A session ends this long after sign-in, active or not.",
            "allow_passwordless": (
                "A passkey alone signs a person in (the browser offers it in the username "
                "field). Lockout, the Login flag, sign-in restrictions and session rules apply "
                "as to a password."
            ),
            "require_phishing_resistant": (
                "People holding a data-protection area, Users at full or Approve on Access "
                "Requests add a passkey before anything else; an authenticator app code or a "
                "backup code no longer completes their sign-in."
            ),
            "notify_new_sign_in": (
                "The first sign-in from a browser family or a country not seen for that person "
                "before is emailed to them, with a link to end sessions they do not recognise."
            ),
        }
        widgets = {"allowed_characters": forms.TextInput(attrs={"autocomplete": "off"})}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["row_version"] = self.instance.row_version or 1


class ChangePasswordForm(forms.Form):
    """The current password and a new one, typed twice."""

    current_password = forms.CharField(
        label="Current password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}),
    )
    new_password = forms.CharField(
        label="New password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )
    new_password_again = forms.CharField(
        label="New password, again",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}),
    )

    def __init__(self, user, *args, **kwargs):
        self.user = user
        super().__init__(*args, **kwargs)

    def clean_current_password(self):
        value = self.cleaned_data["current_password"]
        if not self.user.check_password(value):
            raise forms.ValidationError("That is not your current password.", code="wrong")
        return value

    def clean(self):
        cleaned = super().clean()
        new, again = cleaned.get("new_password"), cleaned.get("new_password_again")
        if new and again and new != again:
            self.add_error("new_password_again", "The two new passwords differ.")
        elif new:
            try:
                validate_password(new, self.user)
            except forms.ValidationError as exc:
                self.add_error("new_password", exc)
        return cleaned


class ReauthenticateForm(forms.Form):
    """The password again (and a two-factor code when the person has a device)."""

    password = forms.CharField(
        label="Your password",
        strip=False,
        max_length=1024,
        widget=forms.PasswordInput(attrs={"autocomplete": "current-password", "autofocus": True}),
    )
    code = forms.CharField(
        label="Code from your authenticator app",
        max_length=20,
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )

    def __init__(self, *args, needs_code: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.needs_code = needs_code
        if needs_code:
            self.fields["code"].required = True
        else:
            del self.fields["code"]


class SignInRestrictionForm(forms.ModelForm):
    """Where and when one user may sign in."""

    row_version = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(
        max_length=300, help_text="Why the restriction changes (kept in the audit log)."
    )

    class Meta:
        model = SignInRestriction
        fields = ["allowed_networks", "allowed_from", "allowed_until"]
        labels = {
            "allowed_networks": "Allowed networks",
            "allowed_from": "Allowed from (user's time)",
            "allowed_until": "Allowed until (user's time)",
        }
        help_texts = {
            "allowed_from": "24-hour time such as 07:00. Leave both times empty for any time.",
            "allowed_until": "An end before the start spans midnight (22:00 to 06:00).",
        }
        widgets = {
            "allowed_networks": forms.Textarea(attrs={"rows": 4}),
            "allowed_from": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
            "allowed_until": forms.TimeInput(attrs={"type": "time"}, format="%H:%M"),
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if not self.is_bound:
            self.initial["row_version"] = self.instance.row_version or 1


class RequireTwoFactorConfirmForm(forms.Form):
    """The second step of turning on "require two-factor": the administrator read the warning."""

    require_2fa_warned = forms.BooleanField(widget=forms.HiddenInput, initial=True, required=False)
    confirm_require_2fa = forms.BooleanField(
        label="I understand: these people must set up two-factor sign-in at their next page",
        error_messages={
            "required": "Tick this to require two-factor sign-in, or untick "
            "“Require two-factor authentication” above."
        },
    )

    def was_shown(self) -> bool:
        """Say whether the warning was on the page that was sent (its second step)."""
        return bool(self.data.get("require_2fa_warned"))


class ReasonForm(forms.Form):
    """An optional reason recorded with an administrator's action."""

    reason = forms.CharField(label="Reason", max_length=200, required=False)


class ElevationLimitForm(forms.Form):
    """The owner's longest just-in-time elevation, with the reason for changing it."""

    max_elevation_hours = forms.IntegerField(
        label="Longest elevation (hours)",
        min_value=1,
        max_value=MAX_HOURS_CEILING,
        help_text=(
            f"1 to {MAX_HOURS_CEILING} hours. People ask for at most this long on Request access, "
            "and approvers can only shorten it. Requests already decided keep their end."
        ),
        error_messages={
            "min_value": f"Choose a whole number of hours from 1 to {MAX_HOURS_CEILING}.",
            "max_value": f"Choose a whole number of hours from 1 to {MAX_HOURS_CEILING}.",
            "invalid": f"Choose a whole number of hours from 1 to {MAX_HOURS_CEILING}.",
            "required": "Enter the longest an elevation may last.",
        },
    )
    reason = forms.CharField(
        label="Reason for the change",
        max_length=500,
        required=False,
        help_text="Required when the limit changes; kept in the activity log.",
    )
