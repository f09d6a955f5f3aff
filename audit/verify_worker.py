"""Entry points of the processes `audit_verify` starts to check segments in parallel.

Nothing from Django is imported at module level: a fresh ("spawn") process unpickles these
references before Django is set up, so Django and the models load inside `start`.
"""

from __future__ import annotations


def start(database: str) -> None:
    """Set Django up in a worker, connected to the database the parent process uses."""
    import django
    from django.conf import settings

    django.setup()
    settings.DATABASES["default"]["NAME"] = database


def walk(chain: int, lo: int, hi: int, chunk_size: int):
    """Check the events of `chain` from seq `lo` to `hi`; see `audit.segments`."""
    from django.db import connections

    from audit import segments

    try:
        return segments.walk_segment(segments.Segment(chain, lo, hi), chunk_size)
    finally:
        connections.close_all()
