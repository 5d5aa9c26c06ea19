"""Fixtures that run the real discord.py bot against the in-process fake Discord."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import discord
import pytest
import yarl
from discord.gateway import DiscordWebSocket
from pydantic import SecretStr

from adapters.discord import DiscordSettings, PersonaBot
from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from tests.discord.fake_discord import TOKEN, FakeDiscord, until
from tests.fakes import MemoryLog

BotFactory = Callable[..., Awaitable[PersonaBot]]


class FakeModerationStore:
    """Flags land in a list; an exchange can be flagged only if the core logged it."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self.flags: list[tuple[str, str, str]] = []
        self.banned: set[tuple[str, str, str]] = set()
        self.votes: dict[tuple[str, str], int] = {}
        self.deliveries: list[tuple[str, str | None, str | None, bool, str]] = []

    def _known(self, exchange_id: str) -> bool:
        return any(e.id == exchange_id for e in self.log.exchanges)

    def flag(self, exchange_id: str, reporter: str, reason: str) -> bool:
        if not self._known(exchange_id):
            return False
        self.flags.append((exchange_id, reporter, reason))
        return True

    def vote(self, exchange_id: str, voter: str, value: int) -> bool:
        if not self._known(exchange_id):
            return False
        self.votes[(exchange_id, voter)] = value
        return True

    def record_delivery(
        self,
        exchange_id: str,
        message_id: str | None,
        permalink: str | None,
        delivered: bool,
        detail: str = "",
    ) -> bool:
        self.deliveries.append((exchange_id, message_id, permalink, delivered, detail))
        return self._known(exchange_id)

    def is_banned(self, platform: str, tenant: str, user_id: str) -> bool:
        return (platform, tenant, user_id) in self.banned


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeDiscord]:
    server = FakeDiscord()
    await server.start()
    monkeypatch.setattr(discord.http.Route, "BASE", server.api_base)
    monkeypatch.setattr(DiscordWebSocket, "DEFAULT_GATEWAY", yarl.URL(server.gateway_url))
    yield server
    await server.stop()


@pytest.fixture
def moderation(log: MemoryLog) -> FakeModerationStore:
    return FakeModerationStore(log)


@pytest.fixture
async def start_bot(
    fake: FakeDiscord, core: DialogueCore, moderation: FakeModerationStore
) -> AsyncIterator[BotFactory]:
    """Starts a PersonaBot (or another class) with the given settings and waits until it is ready."""
    started: list[tuple[PersonaBot, asyncio.Task[None]]] = []

    async def start(
        kind: type[PersonaBot] = PersonaBot,
        with_core: DialogueCore | None = None,
        with_moderation: ModerationStore | None = None,
        queue: Any = None,
        **overrides: Any,
    ) -> PersonaBot:
        overrides.setdefault("edit_interval_seconds", 0.2)  # Discord's pace is 1 s; tests hurry
        settings = DiscordSettings(token=SecretStr(TOKEN), **overrides)
        store = with_moderation or moderation
        bot = kind(with_core or core, store, settings, queue=queue, guild_ready_timeout=0.05)
        task = asyncio.create_task(bot.start(TOKEN))
        started.append((bot, task))
        await until(lambda: bot.is_ready() or task.done())
        if task.done():
            task.result()
        return bot

    yield start
    for bot, task in started:
        await bot.close()
        await asyncio.wait_for(task, 5)
