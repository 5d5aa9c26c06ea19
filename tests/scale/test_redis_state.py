"""Shared rate limits and event de-duplication against the real Redis on 127.0.0.1:6379."""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from adapters.slack.dedup import Deduplicator
from bot.errors import ConfigurationError
from bot.serving.ratelimit import RateLimiter
from bot.serving.redis_state import RedisDeduplicator, RedisRateLimiter, connect
from tests.scale.servers import free_port

pytestmark = pytest.mark.service
REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    """Fails (not skips) when Redis is down; removes this test's keys afterwards."""
    connection = connect(REDIS_URL)
    yield connection
    connection.close()


@pytest.fixture
def prefix(client: redis.Redis) -> Iterator[str]:
    unique = f"pbtest:{uuid.uuid4().hex}:"
    yield unique
    keys = list(client.scan_iter(match=unique + "*"))
    if keys:
        client.delete(*keys)


def test_bucket_allows_a_burst_then_says_when_to_retry(client: redis.Redis, prefix: str) -> None:
    limiter: RateLimiter = RedisRateLimiter(client, capacity=3, per_seconds=60, prefix=prefix)
    decisions = [limiter.hit("slack:T1:U1") for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert 19.0 < decisions[-1].retry_after_s <= 20.0
    assert limiter.hit("slack:T1:U2").allowed  # another user has their own bucket
    ttl = client.pttl(prefix + "slack:T1:U1")
    assert 0 < ttl <= 61_000


def test_bucket_refills_over_time(client: redis.Redis, prefix: str) -> None:
    limiter = RedisRateLimiter(client, capacity=2, per_seconds=1, prefix=prefix)
    assert limiter.hit("k").allowed and limiter.hit("k").allowed
    denied = limiter.hit("k")
    assert not denied.allowed and 0 < denied.retry_after_s <= 0.5
    time.sleep(denied.retry_after_s + 0.05)
    assert limiter.hit("k").allowed


def _hammer_limiter(prefix: str, hits: int, out: multiprocessing.Queue[int]) -> None:
    limiter = RedisRateLimiter(connect(REDIS_URL), capacity=10, per_seconds=3600, prefix=prefix)
    out.put(sum(limiter.hit("shared-user").allowed for _ in range(hits)))


def _claim_events(prefix: str, keys: list[str], out: multiprocessing.Queue[list[str]]) -> None:
    dedup = RedisDeduplicator(connect(REDIS_URL), ttl_s=60, prefix=prefix)
    out.put([key for key in keys if dedup.first_time(key)])


def test_limits_and_deduplication_hold_across_processes(prefix: str) -> None:
    context = multiprocessing.get_context("spawn")
    counts: multiprocessing.Queue[int] = context.Queue()
    claims: multiprocessing.Queue[list[str]] = context.Queue()
    keys = [f"event-{n}" for n in range(200)]
    workers = [context.Process(target=_hammer_limiter, args=(prefix, 40, counts)) for _ in "ab"]
    workers += [context.Process(target=_claim_events, args=(prefix, keys, claims)) for _ in "ab"]
    for worker in workers:
        worker.start()
    allowed = [counts.get(timeout=60) for _ in range(2)]
    claimed = [claims.get(timeout=60) for _ in range(2)]
    for worker in workers:
        worker.join(30)
    assert sum(allowed) == 10  # one global bucket, not one per process
    assert sorted(claimed[0] + claimed[1]) == sorted(keys)  # every event answered exactly once


def test_deduplicator_remembers_for_its_ttl(client: redis.Redis, prefix: str) -> None:
    dedup: Deduplicator = RedisDeduplicator(client, ttl_s=1, prefix=prefix)
    assert dedup.first_time("Ev123") is True
    assert dedup.first_time("Ev123") is False
    assert dedup.first_time("Ev124") is True
    time.sleep(1.2)
    assert dedup.first_time("Ev123") is True


def test_unreachable_redis_fails_open_at_runtime_and_loudly_at_start() -> None:
    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.5)
    assert RedisRateLimiter(dead, capacity=1, per_seconds=60).hit("k").allowed
    assert RedisDeduplicator(dead).first_time("k")
    with pytest.raises(ConfigurationError, match="Cannot reach Redis"):
        connect(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    with pytest.raises(ConfigurationError, match="not a valid Redis URL"):
        connect("http://127.0.0.1:6379")
