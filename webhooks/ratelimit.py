"""Token buckets for the 429 answer, kept in the server process's memory.

Limits are per process: with N server processes an endpoint may receive up to
N times the configured rate. That is deliberate: a limiter that needs a
database or cache round trip would cost every delivery the latency it exists
to protect.
"""

from __future__ import annotations

import threading
import time

MAX_KEYS = 10_000


class TokenBuckets:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}

    def allow(
        self, key: str, limit: tuple[int, float] | None, now: float | None = None
    ) -> bool:
        """Take one token from ``key``'s bucket of ``limit = (requests, seconds)``."""
        if limit is None:
            return True
        capacity, period = limit
        now = time.monotonic() if now is None else now
        with self._lock:
            if len(self._buckets) >= MAX_KEYS and key not in self._buckets:
                # Bound memory under a flood of distinct sources: start afresh.
                self._buckets.clear()
            tokens, stamp = self._buckets.get(key, (float(capacity), now))
            tokens = min(float(capacity), tokens + (now - stamp) * capacity / period)
            allowed = tokens >= 1
            self._buckets[key] = (tokens - 1 if allowed else tokens, now)
            return allowed

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


buckets = TokenBuckets()
