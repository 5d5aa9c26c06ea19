"""Discord misbehaving: rate limits, server errors, gateway drops, bad tokens and refused intents."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import SecretStr

from adapters.discord import DiscordSettings, PersonaBot, serve
from bot.core import DialogueCore
from bot.errors import ConfigurationError, PersonabotError
from bot.settings import PROJECT_ROOT
from tests.discord.conftest import BotFactory, FakeModerationStore
from tests.discord.fake_discord import GENERAL, TOKEN, FakeDiscord, Fault, answered, until
from tests.fakes import MemoryLog

QUESTION = "Why do emerging democracies want to join NATO?"
RETRY_AFTER_S = 0.25


async def test_a_502_and_a_429_with_retry_after_are_survived(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    await start_bot()
    messages = re.compile(rf"/channels/{GENERAL}/messages")
    fake.faults += [
        Fault("POST", messages, 502, "<html>502 Bad Gateway</html>", "text/html"),
        Fault(
            "POST",
            messages,
            429,
            f'{{"message": "You are being rate limited.", "retry_after": {RETRY_AFTER_S}, "global": false}}',
            "application/json",
            {
                "Retry-After": "1",
                "Via": "1.1 google",
                "X-RateLimit-Scope": "user",
            },
        ),
    ]
    started = time.monotonic()
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    await until(lambda: len(fake.posted_messages(GENERAL)) == 3, timeout=15)
    attempts = fake.posted_messages(GENERAL)
    assert attempts[0] == attempts[1] == attempts[2]  # the same reply, retried
    assert fake.faults == []
    assert time.monotonic() - started >= 1 + RETRY_AFTER_S  # waited as told
    final = (await answered(fake, GENERAL))[0]
    assert len(fake.bot_messages(GENERAL)) == 1 and "**Sources**" in final["content"]


async def test_a_gateway_drop_is_resumed_without_losing_events(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    last_seq = len(fake._events)
    await fake.drop(code=4000)
    # Sent while the bot is away: Discord replays it after RESUME.
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    await answered(fake, GENERAL)
    resumes = [f for f in fake.received if f["op"] == 6]
    assert len(resumes) == 1
    assert resumes[0]["d"] == {"seq": last_seq, "session_id": fake.session_id, "token": TOKEN}
    assert [c.path for c in fake.connections] == ["/", "/resume"]
    assert [c.compress for c in fake.connections] == ["zlib-stream", "zlib-stream"]
    assert len([f for f in fake.received if f["op"] == 2]) == 1  # no second IDENTIFY
    assert [e.message.text for e in log.exchanges] == [QUESTION]


async def test_heartbeats_are_sent_and_acknowledged(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    bot = await start_bot()
    await until(lambda: any(f["op"] == 1 for f in fake.received))
    await until(lambda: bot.latency != float("inf"))
    assert bot.latency < 1.0


async def test_an_invalid_token_fails_once_with_a_clear_message(
    fake: FakeDiscord, core: DialogueCore, moderation: FakeModerationStore
) -> None:
    bot = PersonaBot(core, moderation, DiscordSettings(token=SecretStr("not-the-token")))
    with pytest.raises(ConfigurationError, match="Discord rejected DISCORD_TOKEN"):
        await serve(bot, "not-the-token")
    assert len(fake.calls("GET", "/users/@me")) == 1
    assert fake.connections == []
    assert bot.is_closed()


async def test_a_token_the_gateway_rejects_stops_without_an_identify_loop(
    fake: FakeDiscord, core: DialogueCore, moderation: FakeModerationStore
) -> None:
    fake.gateway_token = "revoked"
    bot = PersonaBot(core, moderation, DiscordSettings(token=SecretStr(TOKEN)))
    with pytest.raises(ConfigurationError, match="Discord rejected DISCORD_TOKEN"):
        await serve(bot, TOKEN)
    assert len([f for f in fake.received if f["op"] == 2]) == 1
    assert len(fake.connections) == 1


async def test_a_missing_privileged_intent_stops_without_an_identify_loop(
    fake: FakeDiscord, core: DialogueCore, moderation: FakeModerationStore
) -> None:
    fake.privileged_intents = False
    bot = PersonaBot(
        core, moderation, DiscordSettings(token=SecretStr(TOKEN)), guild_ready_timeout=0.05
    )
    with pytest.raises(ConfigurationError, match="Message Content intent"):
        await serve(bot, TOKEN)
    assert len([f for f in fake.received if f["op"] == 2]) == 1
    assert len(fake.connections) == 1


async def test_discord_unreachable_at_start_is_one_clear_error(
    fake: FakeDiscord, core: DialogueCore, moderation: FakeModerationStore
) -> None:
    await fake.stop()  # nothing listens on that port any more
    bot = PersonaBot(core, moderation, DiscordSettings(token=SecretStr(TOKEN)))
    with pytest.raises(PersonabotError, match="Cannot reach Discord"):
        await serve(bot, TOKEN)
    assert bot.is_closed()


def test_cli_without_a_token_prints_one_line_and_exits_non_zero(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if "DISCORD" not in k}
    env["PYTHONPATH"] = str(PROJECT_ROOT)
    result = subprocess.run(
        [sys.executable, "-c", "from adapters.cli import main; main()", "discord"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,  # no stray .env
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "personabot: DISCORD_TOKEN is not set: copy the bot token from the Discord developer portal."
    ]


def test_malformed_settings_name_the_variable() -> None:
    from adapters.discord import load_discord_settings

    with pytest.raises(ConfigurationError, match="PERSONABOT_DISCORD_CHANNEL_IDS"):
        load_discord_settings(channel_ids="general")
    settings = load_discord_settings(channel_ids="1, 2", guild_ids="3")
    assert (settings.channel_ids, settings.guild_ids) == ((1, 2), (3,))
