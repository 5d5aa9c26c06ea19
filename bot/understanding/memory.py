"""Bounded per-conversation memory: recent turns for follow-ups, and old conversations evicted first."""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable
from dataclasses import dataclass

from bot.messages import Citation


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    citations: tuple[Citation, ...] = ()
    # The passages the model was shown, so a follow-up can show the same ones and reuse the cache.
    prompt_passages: tuple[str, ...] = ()


class ConversationMemory:
    """Keeps at most `turns` turns for each of at most `conversations` conversations (LRU)."""

    def __init__(self, turns: int = 6, conversations: int = 10_000) -> None:
        self._turns = turns
        self._limit = conversations
        self._store: OrderedDict[Hashable, deque[Turn]] = OrderedDict()
        self._lock = threading.Lock()

    def history(self, key: Hashable) -> list[Turn]:
        with self._lock:
            turns = self._store.get(key)
            if turns is None:
                return []
            self._store.move_to_end(key)
            return list(turns)

    def remember(self, key: Hashable, turn: Turn) -> None:
        if self._turns == 0:
            return
        with self._lock:
            turns = self._store.setdefault(key, deque(maxlen=self._turns))
            turns.append(turn)
            self._store.move_to_end(key)
            while len(self._store) > self._limit:
                self._store.popitem(last=False)

    def forget(self, key: Hashable) -> bool:
        with self._lock:
            return self._store.pop(key, None) is not None

    def __len__(self) -> int:
        return len(self._store)
