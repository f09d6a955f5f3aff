"""The SIEM stream form: input only; the view vets the host and certificate through the service."""

from django import forms

from .models import SiemStream


class StreamForm(forms.ModelForm):
    class Meta:
        model = SiemStream
        fields = ["host", "port", "ca_cert", "enabled"]
        labels = {"ca_cert": "CA certificate (PEM)", "host": "Receiver host name"}
        widgets = {"ca_cert": forms.Textarea(attrs={"rows": 6, "spellcheck": "false"})}
        help_texts = {
            "host": "The name in the receiver's TLS certificate (or its IP address).",
            "port": "6514 is the port of syslog over TLS.",
        }
