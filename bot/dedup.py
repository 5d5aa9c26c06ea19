"""The contract for dropping platform events that arrive more than once (Slack retries, two workers)."""

from __future__ import annotations

from typing import Protocol


class Deduplicator(Protocol):
    def first_time(self, key: str) -> bool:
        """True exactly once per key within the implementation's memory window."""
        ...
