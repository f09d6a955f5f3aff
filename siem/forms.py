"""The SIEM stream form: input only; the view vets the host and certificates through the service.
The client key is write-only: the form never shows the saved one."""

from django import forms

from .models import SiemStream


class StreamForm(forms.ModelForm):
    client_key = forms.CharField(
        required=False,
        label="Client private key (PEM)",
        strip=True,
        widget=forms.Textarea(attrs={"rows": 4, "spellcheck": "false", "autocomplete": "off"}),
        help_text=(
            "The key of the client certificate. Never shown again: leave empty to keep the "
            "saved one."
        ),
    )

    reason = forms.CharField(
        max_length=300,
        help_text="Why the stream is configured or changed (kept in the audit log).",
    )

    # The key beside its certificate, the switch and the reason last.
    field_order = ["host", "port", "ca_cert", "client_cert", "client_key", "enabled", "reason"]

    class Meta:
        model = SiemStream
        fields = ["host", "port", "ca_cert", "client_cert", "enabled"]
        labels = {
            "ca_cert": "CA certificate (PEM)",
            "host": "Receiver host name",
            "client_cert": "Client certificate (PEM)",
        }
        widgets = {
            "ca_cert": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"}),
            "client_cert": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"}),
        }
        help_texts = {
            "host": "The name in the receiver's TLS certificate (or its IP address).",
            "port": "6514 is the port of syslog over TLS.",
        }
