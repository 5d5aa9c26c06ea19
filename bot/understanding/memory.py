"""Conversation history: the turns of one conversation, from the log every worker shares.

A conversation is a thread (or a DM, or a reply chain's root), shared by everyone in it. Its history
is read from the conversation log, so a follow-up is understood after a restart and on any worker;
the in-process store below is only a cache for when no log can answer (or none is configured).
A conversation goes stale after a quiet period, and `/forget` hides what came before it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

from bot.messages import Citation

ConversationKey = tuple[str, str, str, str]


@dataclass(frozen=True)
class Turn:
    question: str
    answer: str
    citations: tuple[Citation, ...] = ()
    # The passages the model was shown, so a follow-up can show the same ones and reuse the cache.
    prompt_passages: tuple[str, ...] = ()
    # The question as it was understood (with what it referred back to), for the next follow-up.
    read_as: str = ""
    # The essay sentences the answer was made of (passage id, index), in essay order, so a
    # follow-up is not answered with them again and "what happened next" continues after them.
    span: tuple[tuple[str, int], ...] = ()
    when: datetime | None = None


@runtime_checkable
class TurnSource(Protocol):
    """Where a conversation's earlier turns are stored (the conversation log)."""

    def recent_turns(self, key: ConversationKey, limit: int) -> list[Turn]: ...

    def forget_turns(self, key: ConversationKey, when: datetime) -> None: ...


def live_turns(
    turns: Sequence[Turn], now: datetime, idle: timedelta, forgotten: datetime | None = None
) -> list[Turn]:
    """The turns since the conversation last went quiet for `idle` (or was forgotten), oldest
    first; none when the newest is itself older than that."""
    live: list[Turn] = []
    later = now
    for turn in reversed(turns):
        when = turn.when or now
        if later - when > idle or (forgotten is not None and when <= forgotten):
            break
        live.append(turn)
        later = when
    return list(reversed(live))


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
