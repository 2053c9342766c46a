"""Token buckets, one per API token: writes may burst, then flow at a steady rate."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class _Bucket:
    level: float
    at_s: float


class RateLimiter:
    """Up to ``burst`` calls at once per key, refilled at ``per_minute`` calls a minute.

    In memory, per process: a restart refills every bucket, which is acceptable for a
    limit meant to stop a runaway script, not an attacker holding a valid token. The
    number of keys is bounded by the number of tokens.
    """

    def __init__(
        self, burst: int, per_minute: float, clock_s: Callable[[], float] = time.monotonic
    ) -> None:
        if burst < 1 or per_minute <= 0:
            raise ValueError(f"rate limit: burst {burst} must be >= 1, rate {per_minute} > 0")
        self.burst = burst
        self.per_s = per_minute / 60.0
        self._clock_s = clock_s
        self._buckets: dict[str, _Bucket] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> float:
        """Take one call from ``key``'s bucket: 0.0 if allowed, else the seconds to wait."""
        now = self._clock_s()
        with self._lock:
            bucket = self._buckets.setdefault(key, _Bucket(float(self.burst), now))
            bucket.level = min(self.burst, bucket.level + (now - bucket.at_s) * self.per_s)
            bucket.at_s = now
            if bucket.level >= 1.0:
                bucket.level -= 1.0
                return 0.0
            return (1.0 - bucket.level) / self.per_s


def retry_after_s(wait_s: float) -> int:
    """A Retry-After value: whole seconds, at least one."""
    return max(1, math.ceil(wait_s))
