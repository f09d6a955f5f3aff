"""Evidence: the append-only, hash-chained audit log and its single writer, `audit.record`."""


def record(action, **kwargs):
    """Write one audit event; see `audit.services.record`."""
    from .services import record as _record

    return _record(action, **kwargs)
