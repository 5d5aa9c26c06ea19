"""The real discord.py bot against the fake Discord: triggers, replies, commands and controls."""

from __future__ import annotations

import re
import threading
from pathlib import Path
from typing import Any

import pytest

from adapters.discord import ShardedPersonaBot
from bot.answering.generation import GenerationRequest
from bot.factory import build_core
from bot.messages import ReplyKind
from bot.settings import load_settings
from tests.discord.conftest import BotFactory, FakeModerationStore
from tests.discord.fake_discord import (
    ALICE,
    BOT_ID,
    DM_CHANNEL,
    GENERAL,
    GUILD_ID,
    HISTORY,
    OFF_TOPIC,
    THREAD,
    FakeDiscord,
    answered,
    until,
)
from tests.fakes import MemoryLog, ScriptedGenerator

QUESTION = "Why do emerging democracies want to join NATO?"
OTHER_QUESTION = "What was Clinton's election motto?"
EPHEMERAL = 64
DEFERRED_WITH_SOURCE = 5
CHANNEL_MESSAGE = 4


async def ask_by_mention(fake: FakeDiscord, text: str, channel: str = GENERAL) -> dict[str, Any]:
    """Mentions the bot and returns its finished reply (the message with the buttons)."""
    before = len(fake.finished(channel))
    event = fake.user_message(text, channel, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", event)
    finished: list[dict[str, Any]] = await answered(fake, channel, before + 1)
    return finished[before]


def forbids_pings(body: dict[str, Any]) -> bool:
    """Discord pings nobody: no parsed kinds, no listed users or roles, no reply ping."""
    allowed = body["allowed_mentions"]
    assert isinstance(allowed, dict)
    return (
        allowed["parse"] == []
        and not allowed.get("users")
        and not allowed.get("roles")
        and not allowed.get("replied_user", False)
    )


def bot_reply_ids(fake: FakeDiscord) -> list[str]:
    return [m["id"] for m in fake.messages.values() if m["author"]["id"] == BOT_ID]


async def test_mention_gets_an_answer_with_cited_passages(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    event = fake.user_message(QUESTION, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", event)

    final = (await answered(fake, GENERAL))[0]
    assert "**Sources**" in final["content"]
    body = fake.posted_messages(GENERAL)[0]
    assert body["message_reference"]["message_id"] == int(event["id"])
    assert body["message_reference"]["fail_if_not_exists"] is False
    assert forbids_pings(body)
    first_post = fake.calls("POST", rf"/channels/{GENERAL}/messages")[0]
    typing = fake.calls("POST", rf"/channels/{GENERAL}/typing")
    assert all(t.at < first_post.at for t in typing), "typing… shown under a posted reply"
    exchange = log.exchanges[-1]
    assert exchange.message.text == QUESTION  # the mention itself is stripped
    assert (exchange.message.platform, exchange.message.tenant) == ("discord", GUILD_ID)
    # A question that replies to nothing is the root of the chain its answer starts.
    assert (exchange.message.channel, exchange.message.thread) == (GENERAL, event["id"])
    assert exchange.message.raw_text == event["content"]
    assert exchange.message.user_name == "Alice the Reader"
    assert exchange.reply.citations
    for citation in exchange.reply.citations:
        assert f"**{citation.section}**" in final["content"]
        assert citation.quote.split()[0] in final["content"]


async def test_direct_message_is_answered_with_dm_as_tenant(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, DM_CHANNEL, dm=True))

    final = (await answered(fake, DM_CHANNEL))[0]
    assert "**Sources**" in final["content"]
    assert log.exchanges[-1].message.tenant == "dm"
    assert log.exchanges[-1].message.thread == ""
    assert log.exchanges[-1].message.channel == DM_CHANNEL


async def test_reply_to_the_bot_continues_the_conversation_without_a_mention(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    await ask_by_mention(fake, QUESTION)
    answer_id = bot_reply_ids(fake)[0]

    await fake.dispatch(
        "MESSAGE_CREATE", fake.user_message("And why did Moscow oppose it?", reply_to=answer_id)
    )
    await answered(fake, GENERAL, 2)
    follow_up = log.exchanges[-1]
    assert follow_up.message.text == "And why did Moscow oppose it?"
    assert follow_up.message.thread == log.exchanges[0].message.thread
    # A plain message that neither mentions nor replies to the bot is not for it.
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("lunch anyone?"))
    await ask_by_mention(fake, OTHER_QUESTION)
    assert [e.message.text for e in log.exchanges] == [
        QUESTION,
        "And why did Moscow oppose it?",
        OTHER_QUESTION,
    ]


async def test_thread_follow_ups_need_no_mention_and_have_their_own_memory(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    await ask_by_mention(fake, QUESTION, THREAD)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("What about Russia?", THREAD))

    await answered(fake, THREAD, 2)
    first, follow_up = log.exchanges
    assert follow_up.message.text == "What about Russia?"
    assert (follow_up.message.channel, follow_up.message.thread) == (GENERAL, THREAD)
    assert first.message.thread == THREAD


async def test_ask_is_deferred_at_once_then_completed_by_a_follow_up(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    await fake.dispatch("INTERACTION_CREATE", fake.command("ask", {"question": QUESTION}))

    final = (await answered(fake, GENERAL))[0]
    follow_ups = fake.calls("POST", r"/webhooks/\d+/[^/]+")
    callbacks = fake.calls("POST", r"/interactions/\d+/[^/]+/callback")
    assert [c.body["type"] for c in callbacks] == [DEFERRED_WITH_SOURCE]
    assert fake.requests.index(callbacks[0]) < fake.requests.index(follow_ups[0])
    assert follow_ups[0].body["content"].startswith(f"> {QUESTION}")
    assert final["content"].startswith(f"> {QUESTION}")
    assert "**Sources**" in final["content"]
    assert all(forbids_pings(r.body) for r in follow_ups + fake.edits())
    assert log.exchanges[-1].message.text == QUESTION


async def test_about_says_it_is_an_ai_persona_and_names_the_essay(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    bot = await start_bot()
    await fake.dispatch("INTERACTION_CREATE", fake.command("about"))

    callback = (await until(lambda: fake.calls("POST", r"/interactions/\d+/[^/]+/callback")))[0]
    assert callback.body["type"] == CHANNEL_MESSAGE
    data = callback.body["data"]
    assert data["flags"] & EPHEMERAL
    meta = bot.core.knowledge.metadata
    assert "AI persona" in data["content"]
    assert meta.title in data["content"] and meta.book in data["content"]


async def test_forget_clears_the_callers_memory_in_this_channel(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    bot = await start_bot()
    await ask_by_mention(fake, QUESTION)
    assert bot.core.last_citations(log.exchanges[-1].message)

    for _ in range(2):
        await fake.dispatch("INTERACTION_CREATE", fake.command("forget"))
    callbacks = await until(
        lambda: (
            len(fake.calls("POST", r"/interactions/.*")) == 2
            and fake.calls("POST", r"/interactions/.*")
        )
    )
    first, second = (c.body["data"] for c in callbacks)
    assert "forgotten" in first["content"] and first["flags"] & EPHEMERAL
    assert "nothing" in second["content"]
    assert not bot.core.last_citations(log.exchanges[-1].message)


async def test_report_reply_flags_that_exchange_and_confirms_privately(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog, moderation: FakeModerationStore
) -> None:
    await start_bot()
    await ask_by_mention(fake, QUESTION)
    await ask_by_mention(fake, OTHER_QUESTION)
    first_answer = bot_reply_ids(fake)[0]

    await fake.dispatch("INTERACTION_CREATE", fake.message_command("Report reply", first_answer))
    follow_up = (await until(lambda: fake.calls("POST", r"/webhooks/\d+/[^/]+")))[0]
    callback = fake.calls("POST", r"/interactions/\d+/[^/]+/callback")[0]
    assert callback.body == {"type": DEFERRED_WITH_SOURCE, "data": {"flags": EPHEMERAL}}
    assert follow_up.body["flags"] & EPHEMERAL
    assert "moderators will review" in follow_up.body["content"]
    assert len(moderation.flags) == 1
    exchange_id, reporter, reason = moderation.flags[0]
    assert exchange_id == log.exchanges[0].id  # the reported one, not the latest
    assert reporter == f"discord:{ALICE}"
    assert first_answer in reason


async def test_report_reply_on_someone_elses_message_flags_nothing(
    fake: FakeDiscord, start_bot: BotFactory, moderation: FakeModerationStore
) -> None:
    await start_bot()
    message = fake.user_message("just chatting")
    await fake.dispatch("MESSAGE_CREATE", message)
    await fake.dispatch("INTERACTION_CREATE", fake.message_command("Report reply", message["id"]))

    follow_up = (await until(lambda: fake.calls("POST", r"/webhooks/\d+/[^/]+")))[0]
    assert "Only my own replies" in follow_up.body["content"]
    assert moderation.flags == []


async def test_a_long_reply_is_split_into_valid_messages_on_boundaries(
    fake: FakeDiscord, start_bot: BotFactory, tmp_path: Path, log: MemoryLog
) -> None:
    settings = load_settings(data_dir=tmp_path / "long", max_citations=10)
    await start_bot(with_core=build_core(settings, generator=ScriptedGenerator(), log=log))
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    await answered(fake, GENERAL)
    messages = fake.bot_messages(GENERAL)
    contents = [m["content"] for m in messages]
    assert len(contents) >= 2 and sum(map(len, contents)) > 2000
    assert all(0 < len(c) <= 2000 for c in contents)
    assert all(forbids_pings(p) for p in fake.posted_messages())
    # Each message replies to the one before, so the chain leads back to the question.
    references = [m["message_reference"]["message_id"] for m in messages]
    assert references[1:] == [int(m["id"]) for m in messages[:-1]]
    for cut in contents[:-1]:
        assert cut.endswith((".", "”", "…", '"')), cut[-40:]
    for rest in contents[1:]:  # no message starts inside a citation
        assert not rest.startswith(">"), rest[:40]
        assert re.match(r"(\*\*Sources\*\*\n)?\d+\. \*\*", rest) or not rest.startswith("*")
    assert len(log.exchanges[-1].reply.citations) == 10


async def test_no_sent_payload_can_ping_even_when_model_and_user_write_mentions(
    fake: FakeDiscord, start_bot: BotFactory, tmp_path: Path, log: MemoryLog
) -> None:
    pings = "@everyone @here <@&1200000000000000001> <@1400000000000000002>"
    generator = ScriptedGenerator(
        lambda _r: f"{pings} Emerging democracies want to join NATO. {pings}"
    )
    core = build_core(load_settings(data_dir=tmp_path / "p"), generator=generator, log=log)
    await start_bot(with_core=core)
    await ask_by_mention(fake, f"{QUESTION} {pings}")
    await fake.dispatch(
        "INTERACTION_CREATE", fake.command("ask", {"question": f"{pings} {QUESTION}"})
    )
    await answered(fake, GENERAL, 2)
    await fake.dispatch("INTERACTION_CREATE", fake.command("about"))
    await until(lambda: len(fake.calls("POST", r"/interactions/.*")) == 2)

    outgoing = fake.outgoing()
    assert len(outgoing) >= 3
    for body in outgoing:
        assert forbids_pings(body)
        for ping in ("@everyone", "@here", "<@&", "<@1"):
            assert ping not in body["content"]
    assert "@\u200beveryone" in fake.calls("POST", r"/webhooks/\d+/[^/]+")[0].body["content"]
    assert all(p not in log.exchanges[0].message.text for p in ("<@", "@everyone"))


async def test_messages_from_bots_including_itself_are_ignored(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    other_bot = fake.user_message(QUESTION, mention_bot=True, bot_author=True)
    itself = fake.user_message(QUESTION, mention_bot=True, author_id=BOT_ID, bot_author=True)
    await fake.dispatch("MESSAGE_CREATE", other_bot)
    await fake.dispatch("MESSAGE_CREATE", itself)
    await ask_by_mention(fake, OTHER_QUESTION)
    assert [e.message.text for e in log.exchanges] == [OTHER_QUESTION]


async def test_channels_off_the_allow_list_are_ignored(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot(channel_ids=(int(GENERAL),))
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, OFF_TOPIC, mention_bot=True))
    await fake.dispatch(
        "INTERACTION_CREATE", fake.command("ask", {"question": QUESTION}, OFF_TOPIC)
    )
    callback = (await until(lambda: fake.calls("POST", r"/interactions/.*")))[0]
    assert callback.body["type"] == CHANNEL_MESSAGE
    assert callback.body["data"]["flags"] & EPHEMERAL
    assert "don't answer questions in this channel" in callback.body["data"]["content"]
    await ask_by_mention(fake, OTHER_QUESTION, THREAD)  # a thread of an allowed channel
    assert fake.posted_messages(OFF_TOPIC) == []
    assert [e.message.text for e in log.exchanges] == [OTHER_QUESTION]


async def test_guilds_off_the_allow_list_are_ignored(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot(guild_ids=(42,), allow_dms=True)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(OTHER_QUESTION, DM_CHANNEL, dm=True))
    await answered(fake, DM_CHANNEL)
    assert fake.posted_messages(GENERAL) == []
    assert [e.message.text for e in log.exchanges] == [OTHER_QUESTION]


async def test_rate_limit_answers_slow_down_once_in_voice(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    bot = await start_bot(user_rate=1, user_rate_seconds=600)
    await ask_by_mention(fake, QUESTION)
    slow = await ask_by_mention(fake, OTHER_QUESTION)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("third", mention_bot=True))
    await fake.dispatch("INTERACTION_CREATE", fake.command("ask", {"question": QUESTION}))

    callback = (await until(lambda: fake.calls("POST", r"/interactions/.*")))[0]
    expected_start = bot.core.canned("slow_down", seconds=1).split("{")[0][:30]
    assert slow["content"].startswith(expected_start)
    assert re.search(r"Try again in (600|59\d) seconds", slow["content"])
    assert slow["components"], "a canned reply can be voted on and reported too"
    assert callback.body["data"]["flags"] & EPHEMERAL
    assert "Try again in" in callback.body["data"]["content"]
    assert len(fake.posted_messages(GENERAL)) == 2  # the third message got no second warning
    # Canned replies are logged as exchanges of their own kind; the model saw only the first.
    assert [(e.message.text, e.reply.kind) for e in log.exchanges] == [
        (QUESTION, ReplyKind.ANSWER),
        (OTHER_QUESTION, ReplyKind.RATE_LIMITED),
        (QUESTION, ReplyKind.RATE_LIMITED),
    ]


async def test_channel_rate_limit_applies_across_users(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot(channel_rate=1, channel_rate_seconds=600)
    await ask_by_mention(fake, QUESTION)
    event = fake.user_message(OTHER_QUESTION, mention_bot=True, author_id="1400000000000000005")
    await fake.dispatch("MESSAGE_CREATE", event)
    slow = (await answered(fake, GENERAL, 2))[1]
    assert "Try again in" in slow["content"]
    assert [e.reply.kind for e in log.exchanges] == [ReplyKind.ANSWER, ReplyKind.RATE_LIMITED]


async def test_banned_users_are_ignored(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog, moderation: FakeModerationStore
) -> None:
    moderation.banned.add(("discord", GUILD_ID, ALICE))
    await start_bot()
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
    event = fake.user_message(OTHER_QUESTION, mention_bot=True, author_id="1400000000000000005")
    await fake.dispatch("MESSAGE_CREATE", event)
    await answered(fake, GENERAL)
    assert [e.message.user_id for e in log.exchanges] == ["1400000000000000005"]
    assert len(fake.posted_messages(GENERAL)) == 1


async def test_oversize_input_gets_a_polite_refusal_without_the_model(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog, generator: ScriptedGenerator
) -> None:
    await start_bot(max_input_chars=100)
    reply = await ask_by_mention(fake, QUESTION + " Please explain." * 10)
    assert "under 100 characters" in reply["content"]
    assert [e.reply.kind for e in log.exchanges] == [ReplyKind.TOO_LONG]
    assert generator.requests == []


async def test_a_slow_generation_in_one_channel_does_not_stall_another(
    fake: FakeDiscord, start_bot: BotFactory, tmp_path: Path, log: MemoryLog
) -> None:
    gate = threading.Event()

    def script(request: GenerationRequest) -> str:
        if "Clinton" in request.user:  # the slow one waits until the test lets it go
            assert gate.wait(10), "gate never opened"
        return ""

    settings = load_settings(data_dir=tmp_path / "s", model_adds=True)  # the model is asked
    core = build_core(settings, generator=ScriptedGenerator(script), log=log)
    await start_bot(with_core=core, queue_workers=2)
    try:
        slow = fake.user_message(OTHER_QUESTION, GENERAL, mention_bot=True)
        await fake.dispatch("MESSAGE_CREATE", slow)
        await until(lambda: fake.posted_messages(GENERAL))  # its direct answer; the model waits
        await ask_by_mention(fake, QUESTION, HISTORY)
        await fake.dispatch("INTERACTION_CREATE", fake.command("about"))
        await until(lambda: fake.calls("POST", r"/interactions/.*"))
        assert fake.finished(GENERAL) == []
    finally:
        gate.set()
    await answered(fake, GENERAL)
    assert [e.message.channel for e in log.exchanges] == [HISTORY, GENERAL]


@pytest.mark.parametrize("guilds", [(), (int(GUILD_ID),)])
async def test_commands_sync_globally_or_to_configured_guilds(
    fake: FakeDiscord, start_bot: BotFactory, guilds: tuple[int, ...]
) -> None:
    await start_bot(command_guild_ids=guilds)
    path = (
        rf"/applications/{BOT_ID}/guilds/{GUILD_ID}/commands"
        if guilds
        else rf"/applications/{BOT_ID}/commands"
    )
    synced = fake.calls("PUT", path)
    assert len(synced) == 1
    names = {(c["name"], c["type"]) for c in synced[0].body}
    assert names == {("ask", 1), ("about", 1), ("forget", 1), ("Report reply", 3)}


async def test_auto_sharded_bot_asks_for_shards_and_answers(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    await start_bot(ShardedPersonaBot)
    assert fake.calls("GET", r"/gateway/bot")
    identify = next(f for f in fake.received if f["op"] == 2)
    assert identify["d"]["shard"] == [0, 1]
    assert "**Sources**" in (await ask_by_mention(fake, QUESTION))["content"]
