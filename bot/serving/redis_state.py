"""State that several bot processes must share through one Redis: rate limits and seen events.

Each check is one atomic round trip (a Lua script or SET NX), so two processes can never both
spend a user's last token or both answer the same event.
"""

from __future__ import annotations

import logging
from typing import cast

import redis

from bot.errors import ConfigurationError
from bot.serving.ratelimit import Decision

logger = logging.getLogger(__name__)

# A token bucket per key; Redis's own clock, so processes on machines with skewed clocks agree.
_TOKEN_BUCKET = """
local capacity = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1000000
local state = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(state[1]) or capacity
local stamp = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - stamp) * rate)
local allowed = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate * 1000) + 1000)
return {allowed, tostring(wait)}
"""


def connect(url: str, timeout_s: float = 2.0) -> redis.Redis:
    """A client with bounded time-outs, checked once so a wrong REDIS_URL fails at start-up."""
    try:
        client = redis.Redis.from_url(
            url, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
        )
        client.ping()
    except ValueError as exc:
        raise ConfigurationError(f"REDIS_URL is not a valid Redis URL: {exc}") from None
    except redis.RedisError as exc:
        raise ConfigurationError(f"Cannot reach Redis at REDIS_URL: {exc}") from None
    return client


class RedisRateLimiter:
    """`capacity` hits in a burst, refilled over `per_seconds`, per key, across every process.

    If Redis is unreachable the hit is allowed and logged: users keep being answered and the
    inference queue's own bound still protects the model.
    """

    def __init__(
        self, client: redis.Redis, capacity: int, per_seconds: float, prefix: str = "pb:rate:"
    ) -> None:
        self._client = client
        self._capacity = capacity
        self._rate = capacity / per_seconds
        self._prefix = prefix
        self._script = client.register_script(_TOKEN_BUCKET)

    def hit(self, key: str) -> Decision:
        try:
            allowed, wait = cast(
                list[bytes | int],
                self._script(keys=[self._prefix + key], args=[self._capacity, self._rate]),
            )
        except redis.RedisError as exc:
            logger.warning("rate limit not enforced, Redis failed: %s", exc)
            return Decision(True)
        return Decision(bool(allowed), float(wait))


class RedisDeduplicator:
    """Remembers each event key for `ttl_s` with SET NX EX; the first process to ask wins.

    If Redis is unreachable the event counts as new: a rare duplicate answer beats a lost one.
    """

    def __init__(self, client: redis.Redis, ttl_s: int = 600, prefix: str = "pb:seen:") -> None:
        self._client = client
        self._ttl_s = ttl_s
        self._prefix = prefix

    def first_time(self, key: str) -> bool:
        try:
            return bool(self._client.set(self._prefix + key, b"1", nx=True, ex=self._ttl_s))
        except redis.RedisError as exc:
            logger.warning("event de-duplication skipped, Redis failed: %s", exc)
            return True
