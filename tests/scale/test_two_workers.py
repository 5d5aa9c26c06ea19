"""Two Slack HTTP worker processes sharing Redis and PostgreSQL, under a bounded loopback load.

Every event is delivered to both workers at once (as a load balancer retrying, or Slack
redelivering, would): each must be answered once and logged once, and one user's rate limit
must hold across both processes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from bot.settings import PROJECT_ROOT
from tests.scale.servers import free_port, post_signed, slack_event
from tests.slack.mock_slack import BOT_TOKEN, MockSlack

pytestmark = [pytest.mark.service, pytest.mark.timeout(300)]
DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/0"
SECRET = "0123456789abcdef0123456789abcdef"
USERS, EVENTS_PER_USER, LIMIT = 30, 3, 3
QUESTIONS = [
    "Why did Russia object to NATO enlargement?",
    "What did Yeltsin think of NATO?",
    "Why do emerging democracies want to join NATO?",
]


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    url: str
    ops: str
    log: Path


@pytest.fixture
def slack() -> Iterator[MockSlack]:
    mock = MockSlack().start()
    yield mock
    mock.stop()


@pytest.fixture
def workers(slack: MockSlack, tmp_path: Path) -> Iterator[list[Worker]]:
    started = []
    for name in "ab":
        port, ops = free_port(), free_port()
        env = {
            **os.environ,
            "DATABASE_URL": DATABASE_URL,
            "REDIS_URL": REDIS_URL,
            "PERSONABOT_DATA_DIR": str(tmp_path / name),
            "PERSONABOT_OPS_PORT": str(ops),
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "PERSONABOT_SLACK_API_BASE_URL": slack.base_url,
            "PERSONABOT_SLACK_HOST": "127.0.0.1",
            "PERSONABOT_SLACK_PORT": str(port),
            "PERSONABOT_SLACK_RATE_LIMIT_COUNT": str(LIMIT),
            "PERSONABOT_SLACK_RATE_LIMIT_SECONDS": "3600",
            "PERSONABOT_SLACK_MAX_WAITING": "1000",
        }
        log = tmp_path / f"worker-{name}.log"
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.scale.worker"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}/slack/events"
        started.append(Worker(process, url, f"http://127.0.0.1:{ops}", log))
    try:
        for worker in started:
            _wait_ready(worker)
        yield started
    finally:
        for worker in started:
            worker.process.terminate()
            worker.process.wait(20)


def _wait_ready(worker: Worker) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, worker.log.read_text()[-3000:]
        try:
            if httpx.get(worker.ops + "/readyz", timeout=2).status_code == 200:
                httpx.post(worker.url, timeout=2)  # the Slack port is up too (401: unsigned)
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError("worker did not become ready")


def _rows(channel: str) -> list[tuple[str, str]]:
    engine = create_engine(DATABASE_URL)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT user_id, input_text FROM exchanges WHERE channel = :c"), {"c": channel}
        )
        rows = [(str(user), str(question)) for user, question in found]
    engine.dispose()
    return rows


def _wait_for(slack: MockSlack, method: str, count: int, channel: str, timeout: float) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [c for c in slack.of(method) if c.params.get("channel") == channel]
        if len(done) >= count:
            return max(c.at for c in done)
        time.sleep(0.1)
    raise AssertionError(f"{count} x {method} not seen in {channel}: {slack.summary()[-20:]}")


def test_two_workers_answer_each_event_once_and_share_limits(
    slack: MockSlack, workers: list[Worker]
) -> None:
    channel = "C" + uuid.uuid4().hex[:10].upper()
    run = uuid.uuid4().hex[:8]
    deliveries = []
    for u in range(USERS):
        for n in range(EVENTS_PER_USER):
            event_id = f"Ev{run}{u:03d}{n}"
            ts = f"1700000{u:03d}.{n:06d}"
            body = slack_event(event_id, f"U{run}{u:03d}", channel, QUESTIONS[n], ts)
            deliveries += [(workers[0].url, body), (workers[1].url, body)]
    limited_user = f"U{run}LIM"
    limited = [
        (
            workers[n % 2].url,
            slack_event(f"Ev{run}L{n}", limited_user, channel, QUESTIONS[0], f"1700099999.{n:06d}"),
        )
        for n in range(2 * LIMIT)
    ]
    started = time.monotonic()
    with httpx.Client(timeout=30) as http, ThreadPoolExecutor(16) as pool:
        statuses = list(
            pool.map(lambda d: post_signed(http, d[0], d[1], SECRET), deliveries + limited)
        )
    acked = time.monotonic()
    assert set(statuses) == {200}

    answers = USERS * EVENTS_PER_USER + LIMIT
    # Answers are streamed into each mention's thread: one stream started and stopped per answer.
    last = _wait_for(slack, "chat.stopStream", answers, channel, timeout=240)
    _wait_for(slack, "chat.postEphemeral", LIMIT, channel, timeout=30)
    time.sleep(1.0)  # anything duplicated would arrive now
    started_streams = [
        c for c in slack.of("chat.startStream") if c.params.get("channel") == channel
    ]
    stopped = [c for c in slack.of("chat.stopStream") if c.params.get("channel") == channel]
    notices = [c for c in slack.of("chat.postEphemeral") if c.params.get("channel") == channel]
    assert len(started_streams) == answers and len(stopped) == answers  # no duplicate answers
    assert len(notices) == LIMIT  # the limit held across both processes
    assert all(c.params.get("user") == limited_user for c in notices)
    rows = _rows(channel)
    # No lost (and no duplicated) log rows; the "slow down" notices are logged exchanges too.
    assert len(rows) == answers + LIMIT
    assert sum(user == limited_user for user, _ in rows) == 2 * LIMIT
    served = {
        w.ops: sum(
            float(line.split()[-1])
            for line in httpx.get(w.ops + "/metrics").text.splitlines()
            if line.startswith("personabot_exchanges_total{")
        )
        for w in workers
    }
    assert sum(served.values()) == answers + LIMIT and all(served.values())  # both did real work
    elapsed = last - started
    print(
        f"\nscale figures: {len(deliveries) + len(limited)} deliveries of {answers + LIMIT} events"
        f" to 2 workers; all acked in {acked - started:.2f}s;"
        f" {answers} answers in {elapsed:.2f}s = {answers / elapsed * 60:.0f} answers/min"
        f" (per worker: {sorted(served.values())})"
    )
