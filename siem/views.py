"""The SIEM stream screen: configure host, port and CA certificate; test the connection."""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.shortcuts import redirect, render

from audit.models import AuditChainHead
from portal.access import requires
from portal.forms import apply_service_errors
from roles import catalog

from . import services, stream
from .forms import StreamForm
from .models import SiemStream

AREA = catalog.PARAMETERS


@requires(AREA, catalog.READ, write=catalog.FULL)
def stream_settings(request):
    """Show the owner's stream and its progress; save it, or test the connection."""
    owner = request.user.owner
    current = SiemStream.objects.filter(owner=owner).first()
    form = StreamForm(request.POST or None, instance=current)
    status = 200
    if request.method == "POST":
        if request.POST.get("action") == "test":
            if current is None:
                messages.error(request, "Save the stream first.")
            else:
                result = stream.test_connection(current)
                (messages.success if result.startswith("Connected") else messages.error)(
                    request, result
                )
            return redirect("siem:stream")
        if form.is_valid():
            try:
                services.save_stream(actor=request.user, **form.cleaned_data)
            except ValidationError as exc:
                apply_service_errors(form, exc)
            else:
                messages.success(request, "SIEM stream saved.")
                return redirect("siem:stream")
        status = 400
    head = AuditChainHead.objects.filter(chain=owner.pk).first()
    return render(
        request,
        "siem/stream.html",
        {
            "form": form,
            "stream": current,
            "head_seq": head.seq if head else 0,
            "can_change": request.permissions.has(AREA, catalog.FULL),
        },
        status=status,
    )
