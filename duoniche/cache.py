"""The Redis cache backend: Django's own, with Prometheus counters, one client per pool, and
degraded answers while Redis is unreachable.

Django's `RedisCacheClient` builds a new `redis.Redis` object for every cache call, and redis-py
fills ~160 response callbacks into each one: about 0.2 ms, more than the round trip to a local
Redis. A `redis.Redis` is only a handle on its connection pool and is safe to share between
threads, so one per pool is kept and reused.

The cache is an optimisation on every request path (the duplicate-submission window, the verdict
lock, cached gauges, dashboards), never the source of truth, so a Redis outage must not fail a
request. While Redis does not answer (refused, reset, or silent past `REDIS_SOCKET_TIMEOUT`), every
call answers as an empty cache would, and a write is dropped:

* `get` gives the default, `get_many` nothing, `has_key`/`touch`/`delete`/`clear` False;
* `add` gives True, "the key was free, proceed": its callers use it as a claim (the duplicate
  window, the single-flight lock), and a claim that wrongly reported "taken" would make them wait
  for a holder that does not exist. Without Redis the work is simply not deduplicated;
* `incr` raises ValueError, as for a missing key.

After a failure the client skips Redis for `REDIS_OUTAGE_RETRY_SECONDS` (a circuit breaker), so an
outage costs each call nothing, not a connect timeout; then one call tries again. One warning is
logged when an outage starts and one line when Redis answers again. With Redis up, the only extra
cost is reading one attribute per call.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.cache.backends.redis import RedisCacheClient
from django_prometheus.cache.backends.redis import NativeRedisCache
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

logger = logging.getLogger(__name__)

#: What an unreachable Redis raises (BusyLoadingError, a restart's "loading", is a ConnectionError).
OUTAGE_ERRORS = (RedisConnectionError, RedisTimeoutError)


class PooledClientRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: Any, *, outage_retry_seconds: float = 1.0, **options: Any) -> None:
        # A pooled connection that Redis closed (a restart) fails on its next use: retry such a
        # call once at once on a fresh connection. Timeouts are not retried (that would double a
        # black-holed call).
        options.setdefault("retry", Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)))
        super().__init__(servers, **options)
        self._clients: dict[int, Any] = {}
        self._outage_retry_seconds = outage_retry_seconds
        #: 0.0 while Redis answers; during an outage, when the next call may try Redis again.
        self._retry_at = 0.0
        self._state_lock = threading.Lock()

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        pool = self._get_connection_pool(write)  # type: ignore[attr-defined]
        client = self._clients.get(id(pool))
        if client is None:
            client = self._client(connection_pool=pool)  # type: ignore[attr-defined]
            self._clients[id(pool)] = client
        return client

    # --- the circuit breaker ---------------------------------------------------------------------

    @property
    def is_skipping(self) -> bool:
        """True while calls answer without trying Redis (an outage, until the retry moment)."""
        return bool(self._retry_at) and time.monotonic() < self._retry_at

    def _failed(self, exc: Exception) -> None:
        with self._state_lock:
            started = not self._retry_at
            self._retry_at = time.monotonic() + self._outage_retry_seconds
        if started:
            logger.warning(
                "cache: Redis is unreachable (%s: %s); answering as an empty cache and retrying "
                "every %.1f s",
                type(exc).__name__,
                exc,
                self._outage_retry_seconds,
            )

    def _answered(self) -> None:
        with self._state_lock:
            ended = bool(self._retry_at)
            self._retry_at = 0.0
        if ended:
            logger.warning("cache: Redis answers again")

    # --- Django's client calls, degraded -------------------------------------------------------
    # Each: skip while the breaker is open; on an outage error, open it and answer as empty.

    def add(self, key: Any, value: Any, timeout: Any) -> bool:
        return bool(self._degraded("add", True, key, value, timeout))

    def get(self, key: Any, default: Any) -> Any:
        return self._degraded("get", default, key, default)

    def set(self, key: Any, value: Any, timeout: Any) -> None:
        self._degraded("set", None, key, value, timeout)

    def touch(self, key: Any, timeout: Any) -> bool:
        return bool(self._degraded("touch", False, key, timeout))

    def delete(self, key: Any) -> bool:
        return bool(self._degraded("delete", False, key))

    def get_many(self, keys: Iterable[Any]) -> dict[Any, Any]:
        return dict(self._degraded("get_many", {}, keys))

    def has_key(self, key: Any) -> bool:
        return bool(self._degraded("has_key", False, key))

    def incr(self, key: Any, delta: int) -> Any:
        if self._retry_at and self.is_skipping:
            raise ValueError(f"Key '{key}' not found (the cache is unreachable).")
        try:
            value = super().incr(key, delta)
        except OUTAGE_ERRORS as exc:
            self._failed(exc)
            raise ValueError(f"Key '{key}' not found (the cache is unreachable).") from exc
        if self._retry_at:
            self._answered()
        return value

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        self._degraded("set_many", None, data, timeout)

    def delete_many(self, keys: Any) -> None:
        self._degraded("delete_many", None, keys)

    def clear(self) -> bool:
        return bool(self._degraded("clear", False))

    def _degraded(self, name: str, fallback: Any, *args: Any) -> Any:
        """`RedisCacheClient.<name>(*args)`, or `fallback` while Redis is unreachable."""
        if self._retry_at and self.is_skipping:
            return fallback
        try:
            result = getattr(super(), name)(*args)
        except OUTAGE_ERRORS as exc:
            self._failed(exc)
            return fallback
        if self._retry_at:
            self._answered()
        return result


class RedisCache(NativeRedisCache):
    """Connect and read timeouts and the outage retry come from settings unless OPTIONS set them."""

    def __init__(self, server: str, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = PooledClientRedisCacheClient
        self._options = {
            "socket_connect_timeout": settings.REDIS_SOCKET_CONNECT_TIMEOUT,
            "socket_timeout": settings.REDIS_SOCKET_TIMEOUT,
            "outage_retry_seconds": settings.REDIS_OUTAGE_RETRY_SECONDS,
            **(params.get("OPTIONS") or {}),
        }
