"""Forms of the single sign-on screens: an identity provider and a group mapping."""

from __future__ import annotations

import json

from django import forms
from django.utils.html import format_html

from roles.choices import RoleGroupKind
from roles.models import Role, RoleGroup

from .metadata import MAX_METADATA_BYTES, parse_idp_metadata
from .models import (
    PRESET_ATTRIBUTES,
    AttributePreset,
    SamlGroupMapping,
    SamlIdentityProvider,
)


class IdentityProviderForm(forms.ModelForm):
    """Name, metadata (file or pasted), preset and attribute names, provisioning and switches.

    Choosing the Okta or Entra ID preset fills the attribute names left empty with the names
    that identity provider sends.
    """

    metadata_file = forms.FileField(
        label="Metadata file",
        required=False,
        help_text="The IdP's metadata XML, downloaded from Okta or Entra ID. Or paste it below.",
    )
    row_version = forms.IntegerField(widget=forms.HiddenInput, required=False)

    class Meta:
        model = SamlIdentityProvider
        fields = [
            "name",
            "metadata_xml",
            "preset",
            "username_attribute",
            "email_attribute",
            "first_name_attribute",
            "last_name_attribute",
            "groups_attribute",
            "jit_provisioning",
            "default_role",
            "allow_idp_initiated",
            "enabled",
        ]
        widgets = {"metadata_xml": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})}
        help_texts = {
            "metadata_xml": "Paste the metadata XML here, or choose a file above.",
            "preset": "Fills the attribute names below with what this IdP sends by default.",
        }

    field_order = ["name", "metadata_file", "metadata_xml"]

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["metadata_xml"].required = False
        self.fields["default_role"].queryset = Role.objects.for_owner(owner)
        self.fields["default_role"].empty_label = "No role"
        if self.instance.pk:
            self.fields["row_version"].initial = self.instance.row_version
        self.fields["preset"].widget.attrs["data-presets"] = json.dumps(
            {str(k): v for k, v in PRESET_ATTRIBUTES.items()}
        )

    def clean_metadata_file(self):
        upload = self.cleaned_data.get("metadata_file")
        if upload is None:
            return None
        if upload.size > MAX_METADATA_BYTES:
            raise forms.ValidationError("This file is larger than 1 MB.")
        return upload.read()

    def clean(self):
        cleaned = super().clean()
        uploaded = cleaned.get("metadata_file")
        if uploaded:
            try:
                cleaned["metadata_xml"] = self.uploaded_xml = uploaded.decode("utf-8")
            except UnicodeDecodeError:
                self.add_error("metadata_file", "The file is not UTF-8 text.")
                return cleaned
        xml = cleaned.get("metadata_xml") or ""
        field = "metadata_file" if uploaded else "metadata_xml"
        try:
            self.metadata = parse_idp_metadata(xml)
        except forms.ValidationError as exc:
            self.add_error(field, exc)
        preset = cleaned.get("preset")
        for name, value in PRESET_ATTRIBUTES.get(preset, {}).items():
            if not cleaned.get(name):
                cleaned[name] = value
        if preset == AttributePreset.CUSTOM and not cleaned.get("email_attribute"):
            self.add_error("email_attribute", "Name the attribute that carries the email address.")
        return cleaned

    def full_clean(self):
        """Validate; when the form comes back with errors, keep the metadata file it was given.

        A browser never fills a file input again, so the file's XML is put in the text box
        (and the preset and every other field keep what was chosen), and saving again needs
        no second upload.
        """
        super().full_clean()
        xml = getattr(self, "uploaded_xml", None)
        if self.errors and xml is not None:
            self.data = self.data.copy()
            self.data[self.add_prefix("metadata_xml")] = xml
            upload = self.files.get(self.add_prefix("metadata_file"))
            name = getattr(upload, "name", "") or "The file you chose"
            # Help texts are shown as HTML: the file's name is the person's, so escaped.
            kept = format_html(
                "{} is kept in the box below: there is no need to choose it again.", name[:200]
            )
            self.fields["metadata_file"].help_text = kept
            self["metadata_file"].help_text = kept  # the bound field copied the old one

    def data_for_service(self) -> dict:
        return {name: self.cleaned_data.get(name) for name in self.Meta.fields}


class GroupMappingForm(forms.ModelForm):
    """An IdP group and the role and/or application role groups it gives."""

    class Meta:
        model = SamlGroupMapping
        fields = ["idp_group", "role", "role_groups"]
        widgets = {"role_groups": forms.CheckboxSelectMultiple}
        help_texts = {
            "role": "The first mapping with a role (in list order) gives the person's role.",
            "role_groups": "Added to the person's extra role groups while they are in the group.",
        }

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["role"].queryset = Role.objects.for_owner(owner)
        self.fields["role"].empty_label = "No role"
        self.fields["role_groups"].queryset = RoleGroup.objects.for_owner(owner).filter(
            kind=RoleGroupKind.APPLICATION
        )
        self.fields["role_groups"].required = False
