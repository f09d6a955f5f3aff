"""Which owners have webhook endpoints: the audit log's listening flag and the cached endpoints.

`audit.record` calls the webhooks hook only for owners whose chain head says "webhooks" is
listening; `configuration_changed` keeps that flag true to the endpoints, and `enabled_endpoints`
reads them once per process and stamp.
"""

from __future__ import annotations

from audit.services import set_listening

from .models import WebhookEndpoint

LISTENER = "webhooks"
_CACHE_SIZE = 1024
# (owner id, stamp) -> ((endpoint id, event types), …) of the owner's enabled endpoints.
_endpoints_cache: dict[tuple[int, int], tuple[tuple[int, frozenset[str]], ...]] = {}


def configuration_changed(owner_id: int) -> None:
    """Tell the audit log whether the owner has an enabled endpoint (in the change's transaction).

    Every writer of an endpoint's existence, `enabled` or `event_types` calls this after its
    write; it also changes the owner's stamp, so no process uses its cached endpoints again.
    """
    listening = WebhookEndpoint.objects.filter(owner_id=owner_id, enabled=True).exists()
    set_listening(owner_id, LISTENER, listening)


def enabled_endpoints(owner_id: int, stamp: int) -> tuple[tuple[int, frozenset[str]], ...]:
    """Return the owner's enabled endpoints as (id, event types), cached under the stamp."""
    key = (owner_id, stamp)
    found = _endpoints_cache.get(key)
    if found is None:
        found = tuple(
            (pk, frozenset(types))
            for pk, types in WebhookEndpoint.objects.filter(
                owner_id=owner_id, enabled=True
            ).values_list("pk", "event_types")
        )
        if len(_endpoints_cache) >= _CACHE_SIZE:
            _endpoints_cache.clear()
        _endpoints_cache[key] = found
    return found
