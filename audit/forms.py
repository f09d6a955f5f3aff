"""The filter form of the activity screens."""

from __future__ import annotations

import datetime
import functools

from django import forms
from django.utils import timezone

from .choices import AuditAction, actions_in
from .queries import Filters


class ActivityFilterForm(forms.Form):
    """Person, event type, target, IP and a day range (days in the viewer's time zone)."""

    q = forms.CharField(
        label="Person",
        required=False,
        max_length=150,
        widget=forms.TextInput(
            attrs={"type": "search", "autocomplete": "off", "placeholder": "Login or name"}
        ),
    )
    # One person exactly, by login: what the user record's "See all of this person's activity"
    # and the names in the rows link to. Kept as a hidden field while other filters change.
    person = forms.CharField(required=False, max_length=150, widget=forms.HiddenInput)
    action = forms.ChoiceField(label="Event type", required=False)
    target = forms.CharField(
        label="Record",
        required=False,
        max_length=150,
        widget=forms.TextInput(attrs={"type": "search", "placeholder": "Part of its name"}),
    )
    ip = forms.GenericIPAddressField(label="IP address", required=False, unpack_ipv4=True)
    since = forms.DateField(
        label="From", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label="To", required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args, category: str | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["action"].choices = _action_choices(category)

    def clean_q(self):
        return self.cleaned_data["q"].replace("\x00", "").strip()

    def clean_person(self):
        return self.cleaned_data["person"].replace("\x00", "").strip()

    def clean_target(self):
        return self.cleaned_data["target"].replace("\x00", "").strip()

    def clean(self):
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        if since and until and since > until:
            self.add_error("until", "Choose a day on or after the From day.")
        return cleaned

    def filters(self, people) -> Filters:
        """Return the validated filters; `people.matching(q)` returns the ids of the users the
        search text finds, `people.named(login)` the id of the one user with that login."""
        data = self.cleaned_data
        tz = timezone.get_current_timezone()

        def start_of(day: datetime.date) -> datetime.datetime:
            return datetime.datetime.combine(day, datetime.time.min, tzinfo=tz)

        return Filters(
            person_ids=people.matching(data["q"]) if data.get("q") else None,
            login_ids=people.named(data["person"]) if data.get("person") else None,
            action=data.get("action") or "",
            target=data.get("target") or "",
            ip=data.get("ip") or "",
            since=start_of(data["since"]) if data.get("since") else None,
            until=start_of(data["until"] + datetime.timedelta(days=1))
            if data.get("until")
            else None,
        )

    def active(self) -> dict[str, str]:
        """Return the filters in use, as text (for the export's audit event)."""
        if not self.is_bound or not hasattr(self, "cleaned_data"):
            return {}
        return {k: str(v) for k, v in self.cleaned_data.items() if v not in (None, "")}


@functools.cache
def _action_choices(category: str | None) -> tuple[tuple[str, str], ...]:
    """Return the event types offered on a tab (every type when it has no category)."""
    return (("", "Any"), *(actions_in(category) if category else AuditAction.choices))
