"""The SIEM stream task (Django's tasks framework; the database backend keeps it)."""

from django.tasks import task


@task()
def flush_stream(owner_id: int) -> str:
    """Send the owner's pending audit events to their SIEM (see `siem.stream.flush`)."""
    from . import stream

    return stream.flush(owner_id)
