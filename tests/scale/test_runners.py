"""The production runners with their operations port: probes, metrics that move, JSON logs.

`personabot slack` runs as a real process (`tests.scale.worker`: the runner with the scripted
generator) against the mock Slack; `personabot discord`'s `operate` runs against the fake Discord.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import discord
import httpx
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr
from sqlalchemy import text

from adapters.discord.runner import create_bot, moderation_store_of, operate
from adapters.discord.settings import DiscordSettings, load_discord_settings
from bot.errors import ConfigurationError
from bot.factory import build_core
from bot.settings import PROJECT_ROOT, load_settings
from bot.storage import open_log
from tests.discord.conftest import FakeModerationStore
from tests.discord.fake_discord import GENERAL, TOKEN, FakeDiscord, until
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.scale.servers import free_port, post_signed, slack_event
from tests.slack.mock_slack import BOT_TOKEN, MockSlack

pytestmark = pytest.mark.timeout(120)
SECRET = "0123456789abcdef0123456789abcdef"
QUESTION = "Why did Russia object to NATO enlargement?"


def metric(scraped: str, name: str) -> float:
    """The value of one sample line (`name` includes its labels), 0 when absent."""
    for line in scraped.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0


# -- Slack: the real process ------------------------------------------------------------------


@pytest.fixture
def slack() -> Iterator[MockSlack]:
    mock = MockSlack().start()
    yield mock
    mock.stop()


def test_slack_runner_serves_probes_and_counts_an_answer(slack: MockSlack, tmp_path: Path) -> None:
    port, ops = free_port(), free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"DATABASE_URL", "REDIS_URL"} and not key.startswith("PERSONABOT_")
    }
    env |= {
        "PYTHONPATH": str(PROJECT_ROOT),
        "PERSONABOT_DATA_DIR": str(tmp_path / "data"),
        "PERSONABOT_OPS_PORT": str(ops),
        "PERSONABOT_LOG_FORMAT": "json",
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "PERSONABOT_SLACK_API_BASE_URL": slack.base_url,
        "PERSONABOT_SLACK_HOST": "127.0.0.1",
        "PERSONABOT_SLACK_PORT": str(port),
    }
    stderr = tmp_path / "worker.log"
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.scale.worker"],
        cwd=tmp_path,  # away from any .env
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=stderr.open("wb"),
    )
    base = f"http://127.0.0.1:{ops}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, stderr.read_text()[-3000:]
            assert time.monotonic() < deadline, "the runner did not open its operations port"
            try:
                ready = httpx.get(base + "/readyz", timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        assert ready.status_code == 200, ready.text
        assert ready.json() == {"status": "ready", "checks": {"database": True}}
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        before = httpx.get(base + "/metrics").text
        assert metric(before, 'personabot_exchanges_total{platform="slack"}') == 0
        assert metric(before, "personabot_queue_depth") == 0

        body = slack_event("Ev1RUNNER", "U1RUNNER", "C1RUNNER", QUESTION, "1700000000.000100")
        with httpx.Client(timeout=10) as http:
            assert post_signed(http, f"http://127.0.0.1:{port}/slack/events", body, SECRET) == 200
        slack.wait_for("chat.stopStream")  # the answer, streamed into the mention's thread

        after = httpx.get(base + "/metrics").text
        assert metric(after, 'personabot_exchanges_total{platform="slack"}') == 1
        assert metric(after, 'personabot_reply_seconds_count{platform="slack"}') == 1
        assert metric(after, 'personabot_refusals_total{platform="slack"}') == 0
    finally:
        process.terminate()
        process.wait(20)

    lines = [json.loads(line) for line in stderr.read_text().splitlines() if line.startswith("{")]
    exchange = next(line for line in lines if line["msg"] == "exchange")
    assert exchange["platform"] == "slack" and exchange["user_id"] == "U1RUNNER"
    assert len(exchange["request_id"]) == 16
    assert "question" not in exchange and QUESTION not in stderr.read_text()  # no bodies
    assert any(line["msg"].startswith("operations port") for line in lines)
    assert BOT_TOKEN not in stderr.read_text()


# -- Discord: `operate` against the fake Discord ----------------------------------------------


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
    yield server
    await server.stop()


async def test_discord_runner_is_ready_with_the_gateway_and_counts_an_answer(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    ops = free_port()
    settings = load_settings(data_dir=tmp_path / "data", ops_port=ops)
    log = open_log(settings)
    core = build_core(settings, generator=ScriptedGenerator(), log=log)
    discord_settings = DiscordSettings(token=SecretStr(TOKEN), sync_commands=False)
    running = asyncio.create_task(operate(core, moderation_store_of(core), discord_settings, TOKEN))
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ops}") as client:

            async def readiness() -> httpx.Response | None:
                assert not running.done(), running
                try:
                    response = await client.get("/readyz")
                except httpx.HTTPError:
                    return None
                return response if response.status_code == 200 else None

            ready = None
            for _ in range(200):
                ready = await readiness()
                if ready:
                    break
                await asyncio.sleep(0.05)
            assert ready is not None, "never ready"
            assert ready.json()["checks"] == {"database": True, "discord": True}
            assert (await client.get("/healthz")).json() == {"status": "ok"}

            await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
            # The reply streams in; it is finished once it carries the vote buttons.
            finished = await until(lambda: fake.finished(GENERAL))
            assert "**Sources**" in finished[0]["content"]

            scraped = (await client.get("/metrics")).text
            assert metric(scraped, 'personabot_exchanges_total{platform="discord"}') == 1
            assert metric(scraped, "personabot_queue_depth") == 0
        with log.engine.connect() as connection:  # and the wrapped log still wrote its row
            assert connection.execute(text("SELECT count(*) FROM exchanges")).scalar() == 1
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        log.close()
    # the operations port closed with the bot
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{ops}/healthz", timeout=2)


async def test_discord_process_runs_only_its_shards(fake: FakeDiscord, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    core = build_core(settings, generator=ScriptedGenerator(), log=MemoryLog())
    shards = load_discord_settings(token=TOKEN, sync_commands=False, shard_ids="1", shard_count="2")
    bot = create_bot(core, FakeModerationStore(MemoryLog()), shards)
    running = asyncio.create_task(bot.start(TOKEN))
    try:
        await until(lambda: bot.is_ready() or running.done())
        identify = [frame["d"]["shard"] for frame in fake.received if frame["op"] == 2]
        assert identify == [[1, 2]]  # shard 0 is another process's
    finally:
        await bot.close()
        await asyncio.wait_for(running, 5)


@pytest.mark.parametrize(
    ("ids", "count", "problem"),
    [("1", None, "needs shard_count"), ("0,2", "2", "below shard_count (2)")],
)
def test_discord_shard_settings_are_checked(ids: str, count: str | None, problem: str) -> None:
    overrides = {"shard_ids": ids} | ({"shard_count": count} if count else {})
    with pytest.raises(ConfigurationError, match=re.escape(problem)):
        load_discord_settings(**overrides)
