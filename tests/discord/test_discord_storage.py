"""The Discord bot on the real moderators' log: exchanges stored with the guild as tenant, flags kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters.discord.runner import moderation_store_of
from bot.core import DialogueCore
from bot.errors import ConfigurationError
from bot.factory import build_core
from bot.settings import load_settings
from bot.storage import SqlConversationLog, open_log
from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import ALICE, GENERAL, GUILD_ID, FakeDiscord, answered, until
from tests.fakes import ScriptedGenerator

QUESTION = "Why do emerging democracies want to join NATO?"


def test_a_log_that_keeps_no_flags_is_refused(core: DialogueCore) -> None:
    with pytest.raises(ConfigurationError, match="reports and bans"):
        moderation_store_of(core)


async def test_report_reply_lands_in_the_sql_log_under_the_guild(
    fake: FakeDiscord, start_bot: BotFactory, tmp_path: Path
) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    core = build_core(settings, generator=ScriptedGenerator(), log=open_log(settings))
    store = moderation_store_of(core)
    assert isinstance(store, SqlConversationLog) and core.log is store
    try:
        await start_bot(with_core=core, with_moderation=store)
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
        answer = (await answered(fake, GENERAL))[0]["id"]
        await fake.dispatch("INTERACTION_CREATE", fake.message_command("Report reply", answer))
        follow_up = (await until(lambda: fake.calls("POST", r"/webhooks/\d+/[^/]+")))[0]
        assert "moderators will review" in follow_up.body["content"]

        flags = await until(store.flags)
        assert len(flags) == 1
        assert (flags[0].tenant, flags[0].reporter) == (GUILD_ID, f"discord:{ALICE}")
    finally:
        store.close()
