"""Slack redelivers an event it thinks was missed; each event id is answered once.

`bot.serving.redis_state.RedisDeduplicator` shares the memory between workers; `MemoryDeduplicator`
keeps it in one process.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class Deduplicator(Protocol):
    def first_time(self, key: str) -> bool:
        """True exactly once per key within the implementation's memory window, even in a race."""
        ...


class MemoryDeduplicator:
    """Recent keys in one process's memory, forgotten after the TTL or when too many are kept."""

    def __init__(
        self,
        ttl_seconds: float = 900.0,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def first_time(self, key: str) -> bool:
        now = self._clock()
        with self._lock:
            while self._seen:
                oldest, stamp = next(iter(self._seen.items()))
                if now - stamp < self._ttl and len(self._seen) < self._max_keys:
                    break
                del self._seen[oldest]
            if key in self._seen:
                return False
            self._seen[key] = now
            return True
