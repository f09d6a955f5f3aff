"""A Redis cache that carries on in local memory while Redis is away.

Every entry the portal caches can be recomputed (permission entries are keyed by database
versions, so they are exact wherever they live), so losing Redis must cost speed, never a page:
on a connection error or timeout each call is answered by a per-process local-memory cache, one
warning is logged for the whole outage (not one per request), Redis is tried again after
`RETRY_SECONDS`, and its return is logged once.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0
# Redis being away: refused, reset, timed out, or a name that does not resolve.
UNREACHABLE = (RedisConnectionError, RedisTimeoutError, OSError)


def _fall_back(name: str):
    def method(self, *args, **kwargs):
        if self._use_redis():
            try:
                result = getattr(super(FallbackRedisCache, self), name)(*args, **kwargs)
            except UNREACHABLE as exc:
                self._went_away(exc)
            else:
                self._answered()
                return result
        return getattr(self.local, name)(*args, **kwargs)

    method.__name__ = name
    return method


class _Outage:
    """Whether one Redis location is away, shared by every thread of the process (Django gives
    each thread its own cache object), so an outage is logged once per process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.down_since: float | None = None
        self.retry_at = 0.0


_outages: dict[str, _Outage] = {}
_outages_lock = threading.Lock()


def _outage_of(location: str) -> _Outage:
    with _outages_lock:
        return _outages.setdefault(location, _Outage())


class FallbackRedisCache(RedisCache):
    """Django's Redis cache, answered from local memory while Redis cannot be reached."""

    def __init__(self, server, params):
        super().__init__(server, params)
        location = server if isinstance(server, str) else ",".join(server)
        # LocMemCache keeps its entries per name, so every thread of the process shares them.
        self.local = LocMemCache(f"redis-fallback:{location}", {"TIMEOUT": params.get("TIMEOUT")})
        self._outage = _outage_of(location)

    @property
    def is_down(self) -> bool:
        return self._outage.down_since is not None

    def _use_redis(self) -> bool:
        outage = self._outage
        return outage.down_since is None or time.monotonic() >= outage.retry_at

    def _went_away(self, exc: Exception) -> None:
        outage = self._outage
        with outage.lock:
            outage.retry_at = time.monotonic() + RETRY_SECONDS
            if outage.down_since is not None:
                return
            outage.down_since = time.monotonic()
        log.warning(
            "Redis cache unreachable (%s: %s); using this process's memory until it answers.",
            type(exc).__name__,
            exc,
        )

    def _answered(self) -> None:
        outage = self._outage
        if outage.down_since is None:
            return
        with outage.lock:
            if outage.down_since is None:
                return
            away = time.monotonic() - outage.down_since
            outage.down_since = None
        self.local.clear()  # entries written meanwhile may be older than Redis's
        log.info("Redis cache answers again after %.0f s.", away)

    add = _fall_back("add")
    get = _fall_back("get")
    set = _fall_back("set")
    touch = _fall_back("touch")
    delete = _fall_back("delete")
    get_many = _fall_back("get_many")
    has_key = _fall_back("has_key")
    incr = _fall_back("incr")
    set_many = _fall_back("set_many")
    delete_many = _fall_back("delete_many")
    clear = _fall_back("clear")
