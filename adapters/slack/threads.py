"""Which threads the persona takes part in, known to every worker and after a restart.

A follow-up in a thread needs no new mention once the persona has answered there. That fact
lives where every process can read it: the conversation log (a thread with an exchange in it),
and Redis when configured (marked the moment a mention arrives, before its answer is logged).
"""

from __future__ import annotations

import logging
from typing import Protocol, runtime_checkable

import redis

logger = logging.getLogger(__name__)
ConversationKey = tuple[str, str, str, str]
_THREAD_TTL_S = 30 * 24 * 3600  # a thread quiet for a month is not followed from Redis alone


@runtime_checkable
class ConversationIndex(Protocol):
    """The part of the conversation log that says whether a conversation has any exchange."""

    def has_conversation(self, key: ConversationKey) -> bool: ...


class ThreadFollower(Protocol):
    def join(self, key: ConversationKey) -> None:
        """Notes that the persona is answering in this thread."""
        ...

    def follows(self, key: ConversationKey) -> bool:
        """True when the persona has answered (or is answering) in this thread."""
        ...


class LogThreads:
    """Threads known from the conversation log; `join` has nothing to do (the answer's
    exchange, once logged, is the record)."""

    def __init__(self, index: ConversationIndex) -> None:
        self._index = index

    def join(self, key: ConversationKey) -> None:
        return None

    def follows(self, key: ConversationKey) -> bool:
        try:
            return self._index.has_conversation(key)
        except Exception:  # an unreachable log must not turn an event into a 5xx
            logger.exception("could not ask the conversation log about a Slack thread")
            return False


class RedisThreads:
    """Threads marked in Redis at once, falling back to the log for older ones."""

    def __init__(
        self, client: redis.Redis, fallback: ThreadFollower | None, prefix: str = "pb:slack:thread:"
    ) -> None:
        self._client = client
        self._fallback = fallback
        self._prefix = prefix

    def _key(self, key: ConversationKey) -> str:
        return self._prefix + ":".join(key)

    def join(self, key: ConversationKey) -> None:
        try:
            self._client.set(self._key(key), b"1", ex=_THREAD_TTL_S)
        except redis.RedisError:
            logger.warning("Redis unreachable: thread follow-ups rely on the log alone")

    def follows(self, key: ConversationKey) -> bool:
        try:
            if self._client.exists(self._key(key)):
                return True
        except redis.RedisError:
            logger.warning("Redis unreachable: asking the conversation log about a thread")
        return self._fallback.follows(key) if self._fallback else False
