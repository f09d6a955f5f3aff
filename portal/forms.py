"""What screens share about forms: a service's refusal shown on the form that asked for it."""

from __future__ import annotations

from django.core.exceptions import PermissionDenied, ValidationError


def apply_service_errors(form, exc: ValidationError | PermissionDenied) -> None:
    """Show a service's refusal on `form`.

    A ValidationError's field errors go on the form's field of that name (above the form when
    the form has no such field), its other messages above the form; a refused escalation
    (`roles.guards.EscalationRefused`, or any PermissionDenied) is shown above the form, and
    when it names only some of the areas refused, `form.refusal_details` lists every one
    (`components/form_errors.html` shows them in an expandable detail).
    """
    if not isinstance(exc, ValidationError):
        form.add_error(None, str(exc))
        # A refusal over many areas names a few; the form lists them all in a detail.
        if getattr(exc, "names_only_some", False):
            form.refusal_details = exc.details
    elif hasattr(exc, "error_dict"):
        for field, errors in exc.error_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)
