"""Token buckets for the 429 answer: in the process, shared through the cache.

Each server process decides in its own memory, so a delivery never waits on a
cache round trip. When the cache named by ``WEBHOOKS_RATE_LIMIT_CACHE`` is
shared between processes (Redis, Memcached, a database cache), a background
thread adds what this process let through to a count per limit window in that
cache every ``SYNC_SECONDS``; once the count of all processes together reaches
the limit, every process refuses that key until the window ends. So a limit
holds across N processes, overshooting by at most what they let through in one
sync interval. A cache that fails leaves each process to its own limits.
"""

from __future__ import annotations

import logging
import threading
import time

from django.core.cache import InvalidCacheBackendError, caches
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.dummy import DummyCache
from django.core.cache.backends.locmem import LocMemCache

from webhooks.conf import conf

logger = logging.getLogger("webhooks")

MAX_KEYS = 10_000
SYNC_SECONDS = 0.5

Limit = tuple[int, float]


class TokenBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        #: Tokens taken since the last sync, and the limit they count against.
        self._spent: dict[str, tuple[int, Limit]] = {}
        #: Keys whose shared window all processes together have used up, until when.
        self._closed: dict[str, float] = {}
        self._syncing = False

    def allow(self, key: str, limit: Limit | None, now: float | None = None) -> bool:
        """Take one token from ``key``'s bucket of ``limit = (requests, seconds)``."""
        if limit is None:
            return True
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._closed.get(key, 0.0) > now:
                return False
            tokens = self._refilled(key, limit, now)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            if allowed:
                count, _ = self._spent.get(key, (0, limit))
                self._spent[key] = (count + 1, limit)
        if allowed:
            self._start_syncing()
        return allowed

    def exhausted(
        self, key: str, limit: Limit | None, now: float | None = None
    ) -> bool:
        """Whether ``allow`` would refuse ``key`` now; takes no token."""
        if limit is None:
            return False
        now = time.monotonic() if now is None else now
        with self._lock:
            if self._closed.get(key, 0.0) > now:
                return True
            return self._refilled(key, limit, now) < 1

    def _refilled(self, key: str, limit: Limit, now: float) -> float:
        capacity, period = limit
        if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
            # Bound memory under a flood of distinct sources: start afresh.
            self._buckets.clear()
            self._closed.clear()
        tokens, stamp = self._buckets.get(key, (float(capacity), now))
        return min(float(capacity), tokens + (now - stamp) * capacity / period)

    def sync(self) -> None:
        """Add this process's spending to the shared counts; close keys used up by all."""
        cache = shared_cache()
        with self._lock:
            spent, self._spent = self._spent, {}
        if cache is None:
            return
        closed: dict[str, float] = {}
        for key, (count, (capacity, period)) in spent.items():
            window = int(time.time() // period)
            name = f"webhooks:ratelimit:{key}:{window}"
            cache.add(name, 0, timeout=int(period) + 1)
            try:
                total = cache.incr(name, count)
            except ValueError:
                continue  # the window's count expired between add and incr
            if total >= capacity:
                left = (window + 1) * period - time.time()
                closed[key] = time.monotonic() + left
        with self._lock:
            self._closed.update(closed)

    def _start_syncing(self) -> None:
        with self._lock:
            if self._syncing:
                return
            self._syncing = True
        threading.Thread(
            target=self._sync_forever, name="webhooks-ratelimit", daemon=True
        ).start()

    def _sync_forever(self) -> None:
        while True:
            time.sleep(SYNC_SECONDS)
            try:
                self.sync()
            except Exception:
                logger.warning(
                    "Rate limits not shared this time: the cache failed", exc_info=True
                )

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()
            self._spent.clear()
            self._closed.clear()


def shared_cache() -> BaseCache | None:
    """The cache that processes share counts through, or None when there is none."""
    alias = conf.RATE_LIMIT_CACHE
    if not alias:
        return None
    try:
        cache = caches[alias]
    except InvalidCacheBackendError:
        return None
    # A cache in this process's memory shares nothing with the others.
    return None if isinstance(cache, (LocMemCache, DummyCache)) else cache


buckets = TokenBuckets()
