"""Per-key rate limits shared by every adapter; a Redis-backed limiter can replace the local one."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: float = 0.0


class RateLimiter(Protocol):
    def hit(self, key: str) -> Decision: ...


class TokenBucketLimiter:
    """Allows `capacity` hits in a burst, refilled at `capacity / per_seconds` a second, per key."""

    def __init__(
        self,
        capacity: int,
        per_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self._capacity = float(capacity)
        self._rate = capacity / per_seconds
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> Decision:
        now = self._clock()
        with self._lock:
            tokens, stamp = self._buckets.get(key, (self._capacity, now))
            tokens = min(self._capacity, tokens + (now - stamp) * self._rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return Decision(False, (1.0 - tokens) / self._rate)
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self._max_keys:
                self._buckets.pop(next(iter(self._buckets)))
            return Decision(True)
