"""Forms of the access review screens: input only, querysets scoped to the owner."""

from __future__ import annotations

from django import forms

from accounts.models import Department, User
from roles import catalog
from roles.models import Role

from .choices import Decision, ScopeKind

_LEVELS = [
    (catalog.READ, "Read"),
    (catalog.RUN, "Run"),
    (catalog.EXECUTE, "Execute"),
    (catalog.FULL, "Full"),
]


class CampaignForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="For example “Q3 2026 finance access”.")
    scope_kind = forms.ChoiceField(
        label="Who is reviewed", choices=ScopeKind.choices, widget=forms.RadioSelect
    )
    role = forms.ModelChoiceField(
        queryset=Role.objects.none(), required=False, help_text="With “Users of a role”."
    )
    department = forms.ModelChoiceField(
        queryset=Department.objects.none(),
        required=False,
        help_text="With “Users of a department”.",
    )
    area = forms.ChoiceField(required=False, help_text="With “Users reaching an area”.")
    level = forms.ChoiceField(
        choices=_LEVELS, required=False, initial=catalog.FULL, label="Minimum level"
    )
    reviewers = forms.ModelMultipleChoiceField(
        queryset=User.objects.none(),
        help_text="They decide on each user; nobody decides on their own access.",
    )
    due_date = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = Role.objects.filter(owner=owner).order_by("name")
        self.fields["department"].queryset = Department.objects.filter(
            owner=owner, retired=False
        ).order_by("name")
        self.fields["reviewers"].queryset = User.objects.filter(
            owner=owner, allow_login=True, kind="interactive"
        ).order_by("last_name", "first_name", "username")
        self.fields["area"].choices = [("", "—")] + [
            (a.code, f"{catalog.Category.LABELS[a.category]}: {a.label}")
            for a in catalog.areas_for(catalog.Channel.APPLICATION)
        ]

    def clean(self):
        data = super().clean()
        kind = data.get("scope_kind")
        if kind == ScopeKind.ROLE and not data.get("role"):
            self.add_error("role", "Choose the role whose users are reviewed.")
        if kind == ScopeKind.DEPARTMENT and not data.get("department"):
            self.add_error("department", "Choose the department whose users are reviewed.")
        if kind == ScopeKind.AREA:
            code, level = data.get("area"), data.get("level")
            if not code:
                self.add_error("area", "Choose the area.")
            elif level and not catalog.get(code).is_level(level):
                levels = ", ".join(catalog.get(code).levels[1:])
                self.add_error("level", f"This area's levels are {levels}.")
        return data


class DecisionForm(forms.Form):
    decision = forms.ChoiceField(
        choices=[c for c in Decision.choices if c[0] != Decision.PENDING],
        widget=forms.RadioSelect,
    )
    new_role = forms.ModelChoiceField(
        queryset=Role.objects.none(), required=False, help_text="With “Change role”."
    )
    override_id = forms.TypedChoiceField(
        label="Override", coerce=int, required=False, help_text="With “Remove override”."
    )
    eligibility_id = forms.TypedChoiceField(
        label="Eligibility",
        coerce=int,
        required=False,
        help_text="With “Remove eligibility”: the user's own; the role's are changed on the role.",
    )
    comment = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="Required unless access is kept. Becomes the details of the change.",
    )

    def __init__(self, *args, item, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["new_role"].queryset = Role.objects.filter(
            owner_id=item.campaign.owner_id
        ).order_by("name")
        overrides = item.snapshot.get("overrides", [])
        self.fields["override_id"].choices = [("", "—")] + [
            (o["id"], f"{o['label']}: {o['level']} ({o['reason']})") for o in overrides
        ]
        if not overrides:
            self.fields["decision"].choices = [
                c for c in self.fields["decision"].choices if c[0] != Decision.REMOVE_OVERRIDE
            ]
        own = item.own_eligibilities()
        self.fields["eligibility_id"].choices = [("", "—")] + [
            (e["eligibility_id"], f"{e['group']} ({e['reason']})") for e in own
        ]
        if not own:
            del self.fields["eligibility_id"]
            self.fields["decision"].choices = [
                c for c in self.fields["decision"].choices if c[0] != Decision.REMOVE_ELIGIBILITY
            ]
        if item.snapshot.get("kind") == "api":
            self.fields["decision"].choices = [
                c for c in self.fields["decision"].choices if c[0] != Decision.DEACTIVATE
            ]
        self.item = item

    def clean(self):
        """Leave behind the comment of a decision this one replaces.

        The form opens with the recorded decision and its comment; a reviewer who picks another
        decision without touching the comment would otherwise file the old reason under the new
        decision (and the report would show "Keep access" explained by why to remove it).
        """
        data = super().clean()
        item, decision = self.item, data.get("decision")
        comment = (data.get("comment") or "").strip()
        superseded = item.is_decided and decision and decision != item.decision
        if superseded and comment and comment == (item.comment or "").strip():
            if decision == Decision.KEEP:
                data["comment"] = ""
            else:
                self.add_error(
                    "comment",
                    f"This comment explains the earlier decision ({item.get_decision_display()}). "
                    "Say why you chose this one instead.",
                )
        return data


ITEM_FILTERS = [
    ("all", "All"),
    ("pending", "Pending"),
    ("decided", "Decided, not applied"),
    ("refused", "Refused when applied"),
    ("applied", "Applied"),
]


class ItemFilterForm(forms.Form):
    show = forms.ChoiceField(choices=ITEM_FILTERS, required=False, label="Show")
    q = forms.CharField(required=False, max_length=100, label="User")


class DormantForm(forms.Form):
    days = forms.IntegerField(
        label="No sign-in for (days)", min_value=1, max_value=3650, initial=90
    )
