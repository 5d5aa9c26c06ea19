"""Start-up, shutdown and the wire's rough edges, with the real client and `personabot discord`."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

from adapters.discord import PersonaBot, ShardedPersonaBot
from adapters.discord.sync import STATE_FILE
from bot.messages import ReplyKind
from bot.settings import PROJECT_ROOT, load_settings
from bot.storage import SqlConversationLog, open_log
from tests.discord.conftest import BotFactory, FakeModerationStore
from tests.discord.fake_discord import (
    BOT_ID,
    GENERAL,
    GUILD_ID,
    TOKEN,
    FakeDiscord,
    Fault,
    answered,
    until,
)
from tests.fakes import MemoryLog

QUESTION = "Why do emerging democracies want to join NATO?"
IDENTIFY = 2
NORMAL_CLOSURE = 1000
CLOUDFLARE_429 = "<html><body>error code: 1015 You are being rate limited</body></html>"


def _cloudflare(path: str) -> Fault:
    """A 429 from Cloudflare: HTML, Retry-After, no `Via` (discord.py does not retry those)."""
    return Fault("POST", re.compile(path), 429, CLOUDFLARE_429, "text/html", {"Retry-After": "0.3"})


async def test_a_cloudflare_429_is_retried_and_the_answer_delivered_once(
    fake: FakeDiscord, start_bot: BotFactory, moderation: FakeModerationStore, log: MemoryLog
) -> None:
    await start_bot()
    fake.faults.append(_cloudflare(rf"/channels/{GENERAL}/messages"))
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    final = (await answered(fake, GENERAL))[0]
    assert len(fake.posted_messages(GENERAL)) == 2  # the 429, then the retry
    assert [m["id"] for m in fake.bot_messages(GENERAL)] == [final["id"]]  # delivered once
    assert "**Sources**" in final["content"]
    [(exchange_id, message_id, link, delivered, _)] = moderation.deliveries
    assert (exchange_id, message_id, delivered) == (log.exchanges[0].id, final["id"], True)
    assert link == f"https://discord.com/channels/{GUILD_ID}/{GENERAL}/{final['id']}"


async def test_a_reply_discord_never_takes_is_recorded_as_not_delivered(
    fake: FakeDiscord, start_bot: BotFactory, moderation: FakeModerationStore, log: MemoryLog
) -> None:
    await start_bot()
    fake.faults += [_cloudflare(rf"/channels/{GENERAL}/messages") for _ in range(4)]
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    await until(lambda: moderation.deliveries, timeout=15)
    [(exchange_id, message_id, _, delivered, detail)] = moderation.deliveries
    assert (exchange_id, message_id, delivered) == (log.exchanges[0].id, None, False)
    assert "429" in detail
    assert fake.bot_messages(GENERAL) == []


async def test_an_unknown_or_stale_command_gets_a_private_answer(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    await start_bot()
    await fake.dispatch("INTERACTION_CREATE", fake.command("summarise", {"chapter": "3"}))
    callback = (await until(lambda: fake.calls("POST", r"/interactions/.*")))[0]
    assert callback.body["type"] == 4
    assert callback.body["data"]["flags"] & 64
    assert "/ask" in callback.body["data"]["content"]


async def test_commands_are_synced_only_when_they_change_and_the_old_scope_is_emptied(
    fake: FakeDiscord, start_bot: BotFactory, tmp_path: Path
) -> None:
    first = await start_bot()
    state = Path(first.core.settings.data_dir) / STATE_FILE
    assert fake.commands == {"global": ["ask", "about", "forget", "Report reply"]}
    await first.close()

    second = await start_bot()  # same commands, same scope: no request at all
    assert len(fake.calls("PUT", r"/applications/.*")) == 1
    await second.close()

    await start_bot(command_guild_ids=(int(GUILD_ID),))  # to a test server: global emptied
    assert fake.commands == {"global": [], GUILD_ID: ["ask", "about", "forget", "Report reply"]}
    assert state.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def _launch(
    fake: FakeDiscord, data_dir: Path, gateway: str, model_seconds: float, **env: str
) -> asyncio.subprocess.Process:
    environment = {k: v for k, v in os.environ.items() if "DISCORD" not in k}
    environment.update(
        DISCORD_TOKEN=TOKEN,
        PYTHONPATH=str(PROJECT_ROOT),
        PERSONABOT_DATA_DIR=str(data_dir),
        PERSONABOT_DISCORD_SYNC_COMMANDS="false",
        **env,
    )
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.discord.launch",
        fake.api_base,
        gateway,
        str(model_seconds),
        env=environment,
        cwd=data_dir.parent,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_an_unreachable_gateway_is_one_line_and_exit_2(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    closed = f"ws://127.0.0.1:{_free_port()}/"
    process = await _launch(fake, tmp_path / "data", closed, 0, PERSONABOT_LOG_LEVEL="WARNING")
    _, stderr = await asyncio.wait_for(process.communicate(), 180)
    assert process.returncode == 2
    assert fake.calls("GET", "/users/@me"), "REST was reached"
    assert stderr.decode().strip().splitlines() == [
        f"personabot: Cannot reach Discord's gateway at {closed}: "
        f"[Errno 111] Connect call failed ('127.0.0.1', {closed.split(':')[2].strip('/')})"
    ]


async def test_sigterm_during_an_answer_delivers_it_closes_cleanly_and_flushes_the_log(
    fake: FakeDiscord, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    process = await _launch(fake, data, fake.gateway_url, 2.0)
    try:
        await until(lambda: any(f["op"] == IDENTIFY for f in fake.received), timeout=180)
        await asyncio.sleep(0.5)  # READY and GUILD_CREATE are read
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
        await until(lambda: fake.posted_messages(GENERAL), timeout=60)  # the first piece
        process.send_signal(signal.SIGTERM)  # the turn is still in progress
        _, stderr = await asyncio.wait_for(process.communicate(), 120)
    finally:
        if process.returncode is None:
            process.kill()
    assert process.returncode == 0, stderr.decode()[-2000:]
    final = fake.finished(GENERAL)
    assert len(final) == 1 and "**Sources**" in final[0]["content"]
    assert fake.close_codes == [NORMAL_CLOSURE]

    log = open_log(load_settings(data_dir=data))
    try:
        assert isinstance(log, SqlConversationLog)
        [summary] = log.list_exchanges().items
        assert summary.kind == ReplyKind.ANSWER
        assert summary.delivery == "delivered"
        assert summary.permalink and summary.permalink.endswith(final[0]["id"])
    finally:
        log.close()
    assert BOT_ID in final[0]["author"]["id"]


async def test_closing_ends_the_gateway_session_with_a_normal_closure(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    for kind in (PersonaBot, ShardedPersonaBot):
        bot = await start_bot(kind)
        await bot.close()
    await until(lambda: len(fake.close_codes) == 2)
    assert fake.close_codes == [NORMAL_CLOSURE, NORMAL_CLOSURE]


async def test_a_cloudflare_429_on_the_ask_deferral_is_retried_within_discords_3_seconds(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    await start_bot()
    fake.faults.append(
        Fault(
            "POST",
            re.compile(r"/interactions/\d+/[^/]+/callback"),
            429,
            CLOUDFLARE_429,
            "text/html",
            {"Retry-After": "0.3"},
        )
    )
    await fake.dispatch("INTERACTION_CREATE", fake.command("ask", {"question": QUESTION}))

    final = (await answered(fake, GENERAL))[0]
    callbacks = fake.calls("POST", r"/interactions/\d+/[^/]+/callback")
    assert [c.body["type"] for c in callbacks] == [5, 5]  # refused once, then deferred
    assert callbacks[1].at - callbacks[0].at < 3
    assert "**Sources**" in final["content"]
