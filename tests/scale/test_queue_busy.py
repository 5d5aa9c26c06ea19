"""Request ids follow a turn into the inference thread; a full queue answers "busy" in voice."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr

from adapters.discord import DiscordSettings, PersonaBot
from adapters.slack.settings import load_slack_settings
from bot.answering.generation import GenerationRequest
from bot.core import DialogueCore
from bot.factory import build_core
from bot.messages import Exchange, IncomingMessage, ReplyKind
from bot.serving.inference import InferenceQueue, QueueFullError
from bot.serving.logging_setup import request_context, request_id
from bot.settings import Settings
from tests.discord.conftest import FakeModerationStore
from tests.discord.fake_discord import GENERAL, TOKEN, FakeDiscord, until
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.slack.conftest import (
    SIGNING_SECRET,
    FakeModeration,
    SlackHarness,
    make_bot,
    mention,
    serve,
)
from tests.slack.mock_slack import BOT_TOKEN, MockSlack

pytestmark = pytest.mark.timeout(60)
QUESTION = "Why did Russia object to NATO enlargement?"


class IdLog(MemoryLog):
    """Records which request id and thread each exchange was logged under."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str | None, str]] = []

    def record(self, exchange: Exchange) -> None:
        self.seen.append((request_id.get(), threading.current_thread().name))
        super().record(exchange)


class Gate:
    """A generator script that holds every generation until released, so the queue fills."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, _: GenerationRequest) -> str:
        self.entered.set()
        assert self.release.wait(30)
        return ""


@pytest.fixture
def gate() -> Iterator[Gate]:
    held = Gate()
    yield held
    held.release.set()


@pytest.fixture
def gated_core(settings: Settings, gate: Gate, log: MemoryLog) -> DialogueCore:
    return build_core(settings, generator=ScriptedGenerator(gate), log=log)


async def test_request_id_reaches_the_inference_thread(settings: Settings) -> None:
    log = IdLog()
    queue = InferenceQueue(build_core(settings, generator=ScriptedGenerator(), log=log))
    try:
        with request_context("req-one"):
            await queue.respond(IncomingMessage(text=QUESTION, channel="a"))
        with request_context("req-two"):
            await queue.respond(IncomingMessage(text=QUESTION, channel="b"))
        await queue.respond(IncomingMessage(text=QUESTION, channel="c"))
    finally:
        queue.close()
    assert [rid for rid, _ in log.seen] == ["req-one", "req-two", None]
    assert all(thread.startswith("inference") for _, thread in log.seen)


async def test_full_queue_raises_at_once(gated_core: DialogueCore, gate: Gate) -> None:
    queue = InferenceQueue(gated_core, workers=1, max_waiting=1)
    first = asyncio.create_task(queue.respond(IncomingMessage(text=QUESTION, channel="a")))
    await asyncio.to_thread(gate.entered.wait, 10)
    with pytest.raises(QueueFullError):
        await queue.respond(IncomingMessage(text=QUESTION, channel="b"))
    gate.release.set()
    assert (await first).reply.citations
    queue.close()


# -- Discord ----------------------------------------------------------------------------------


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
    yield server
    await server.stop()


async def test_discord_answers_busy_when_the_queue_is_full(
    fake: FakeDiscord, gated_core: DialogueCore, gate: Gate, log: MemoryLog
) -> None:
    settings = DiscordSettings(token=SecretStr(TOKEN), sync_commands=False)
    queue = InferenceQueue(gated_core, workers=1, max_waiting=1)
    bot = PersonaBot(
        gated_core, FakeModerationStore(log), settings, queue=queue, guild_ready_timeout=0.05
    )
    running = asyncio.create_task(bot.start(TOKEN))
    try:
        await until(bot.is_ready)
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
        await asyncio.to_thread(gate.entered.wait, 10)
        second = fake.user_message(QUESTION, mention_bot=True, author_id="1400000000000000002")
        await fake.dispatch("MESSAGE_CREATE", second)

        # The first answer's direct part is already on screen; the busy notice replies to the second.
        replies_to_second = lambda: [  # noqa: E731
            m
            for m in fake.posted_messages(GENERAL)
            if (m.get("message_reference") or {}).get("message_id") == int(second["id"])
        ]
        busy = (await until(replies_to_second))[0]
        assert busy["content"] == gated_core.canned("busy")
        assert busy["message_reference"]["message_id"] == int(second["id"])
        gate.release.set()
        # The answer streams in; it is finished once its last message carries the vote buttons.
        sourced = lambda: [m for m in fake.finished(GENERAL) if "**Sources**" in m["content"]]  # noqa: E731
        assert await until(sourced)
        # The busy notice is logged too, as a canned reply that can be reported.
        assert [e.reply.kind for e in log.exchanges] == [ReplyKind.BUSY, ReplyKind.ANSWER]
    finally:
        gate.release.set()
        await bot.close()
        await asyncio.wait_for(running, 5)


# -- Slack ------------------------------------------------------------------------------------


@pytest.fixture
def mock_slack() -> Iterator[MockSlack]:
    mock = MockSlack().start()
    yield mock
    mock.stop()


def test_slack_answers_busy_when_every_slot_is_taken(
    mock_slack: MockSlack, gated_core: DialogueCore, gate: Gate, log: MemoryLog
) -> None:
    settings = load_slack_settings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_base_url=mock_slack.base_url,
        workers=1,
        max_waiting=1,
    )
    bot = make_bot(gated_core, settings, FakeModeration(log))
    url, server, thread = serve(bot)
    slack = SlackHarness(url, mock_slack)
    try:
        assert slack.event(mention(QUESTION, ts="1700000000.000001")).status_code == 200
        assert gate.entered.wait(10)
        second = mention(QUESTION, ts="1700000000.000002", user="U2")
        assert slack.event(second).status_code == 200

        notice = mock_slack.wait_for("chat.postEphemeral")[0].params
        assert notice["user"] == "U2"
        assert notice["text"] == gated_core.canned("busy")
        gate.release.set()
        mock_slack.wait_for("chat.stopStream")  # the first answer, streamed into its thread
        assert [e.reply.kind for e in log.exchanges].count(ReplyKind.ANSWER) == 1
    finally:
        gate.release.set()
        slack.http.close()
        server.should_exit = True
        thread.join(10)
        bot.close()
