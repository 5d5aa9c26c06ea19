"""Conversations on Discord: reply chains shared by whoever replies, threads, chatter, clean text."""

from __future__ import annotations

from typing import Any

from adapters.discord import PersonaBot
from bot.core import DialogueCore
from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import (
    ALICE,
    BOT_ID,
    GENERAL,
    THREAD,
    FakeDiscord,
    answered,
    payload,
    until,
)
from tests.fakes import MemoryLog

QUESTION = "Why did Yeltsin feel betrayed?"
BOB = "1400000000000000007"
CAROL = "1400000000000000008"
BOT_ROLE = "1600000000000000001"
HISTORIANS = "1600000000000000002"


async def _ask(fake: FakeDiscord, event: dict[str, Any], channel: str = GENERAL) -> dict[str, Any]:
    before = len(fake.finished(channel))
    await fake.dispatch("MESSAGE_CREATE", event)
    finished: list[dict[str, Any]] = await answered(fake, channel, before + 1)
    return finished[before]


async def test_a_second_users_reply_to_the_answer_continues_the_conversation(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog, core: DialogueCore
) -> None:
    await start_bot()
    question = fake.user_message(QUESTION, mention_bot=True)
    answer = await _ask(fake, question)

    follow_up = fake.user_message("what happened after that?", reply_to=answer["id"], author_id=BOB)
    await _ask(fake, follow_up)
    first, second = log.exchanges
    assert second.message.user_id == BOB
    assert second.message.thread == first.message.thread == question["id"]
    assert second.message.conversation_key() == first.message.conversation_key()
    # The core saw the first turn as this conversation's history when Bob asked.
    assert [turn.question for turn in core.memory.history(first.message.conversation_key())][
        :1
    ] == [QUESTION]

    # Carol replies to Bob (not to the bot) and mentions it: still the same chain.
    carol = fake.user_message(
        "and what did Clinton say?", reply_to=follow_up["id"], author_id=CAROL
    )
    carol["content"] = f"<@{BOT_ID}> {carol['content']}"
    carol["mentions"] = [{"id": BOT_ID, "username": "Kozyrev Persona", "bot": True}]
    await _ask(fake, carol)
    assert log.exchanges[-1].message.thread == question["id"]


async def test_the_chain_is_followed_after_a_restart_from_the_answers_buttons(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    first_bot = await start_bot()
    question = fake.user_message(QUESTION, mention_bot=True)
    answer = await _ask(fake, question)
    await first_bot.close()

    second_bot = await start_bot()
    assert len(second_bot.sent) == 0  # nothing remembered: the buttons carry the conversation
    reply = fake.user_message("why?", reply_to=answer["id"], author_id=BOB)
    await _ask(fake, reply)
    assert log.exchanges[-1].message.thread == question["id"]


async def test_in_a_thread_questions_are_answered_and_chatter_is_not(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    await _ask(fake, fake.user_message(QUESTION, THREAD, mention_bot=True), THREAD)

    await fake.dispatch("MESSAGE_CREATE", fake.user_message("lol ok, brb", THREAD, author_id=BOB))
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("same here 😂", THREAD))
    await _ask(
        fake, fake.user_message("what did Clinton promise Yeltsin", THREAD, author_id=BOB), THREAD
    )
    assert [e.message.text for e in log.exchanges] == [QUESTION, "what did Clinton promise Yeltsin"]
    assert {e.message.thread for e in log.exchanges} == {THREAD}  # one conversation for all
    assert len(fake.finished(THREAD)) == 2


async def test_a_mention_of_the_bots_managed_role_addresses_it(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    by_role = fake.user_message(
        f"<@&{BOT_ROLE}> did Putin float Russia joining NATO?", mention_roles=(BOT_ROLE,)
    )
    await _ask(fake, by_role)
    assert log.exchanges[-1].message.text == "did Putin float Russia joining NATO?"
    # Another role is not the bot.
    other = fake.user_message(f"<@&{HISTORIANS}> thoughts?", mention_roles=(HISTORIANS,))
    await fake.dispatch("MESSAGE_CREATE", other)
    await _ask(fake, fake.user_message("What was Clinton's motto?", mention_bot=True))
    assert len(log.exchanges) == 2


async def test_mentions_channels_emoji_links_and_markup_reach_the_core_as_plain_words(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    await start_bot()
    raw = (
        f"<@&{HISTORIANS}> <@{ALICE}> asked in <#{GENERAL}>: **what** did Clinton promise "
        "Yeltsin <:kremlin:1234567890> https://example.com/x?utm_source=y ||really||? "
        "[source](https://example.org) @everyone"
    )
    event = fake.user_message(raw, mention_bot=True, mention_roles=(HISTORIANS,))
    # In a guild, Discord adds each mentioned user's partial member.
    event["mentions"].append({**payload("message_create")["author"], "member": event["member"]})
    await _ask(fake, event)
    message = log.exchanges[-1].message
    assert message.text == (
        "Historians Alice the Reader asked in #general: what did Clinton promise Yeltsin really? source"
    )
    assert message.raw_text == event["content"]  # the original stays in the log


async def test_forget_clears_the_callers_latest_conversation_in_the_channel(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    bot: PersonaBot = await start_bot()
    await _ask(fake, fake.user_message(QUESTION, mention_bot=True))
    key = log.exchanges[-1].message.conversation_key()
    assert bot.core.memory.history(key)

    await fake.dispatch("INTERACTION_CREATE", fake.command("forget"))
    callback = (await until(lambda: fake.calls("POST", r"/interactions/.*")))[0]
    assert "forgotten" in callback.body["data"]["content"]
    assert not bot.core.memory.history(key)


async def test_after_a_restart_questions_in_a_thread_it_spoke_in_are_still_answered(
    fake: FakeDiscord, start_bot: BotFactory, log: MemoryLog
) -> None:
    first = await start_bot()
    await _ask(fake, fake.user_message(QUESTION, THREAD, mention_bot=True), THREAD)
    await first.close()

    await start_bot()  # remembers nothing: the thread's history shows it took part
    await fake.dispatch("MESSAGE_CREATE", fake.user_message("brb", THREAD, author_id=BOB))
    await _ask(fake, fake.user_message("who was Clinton?", THREAD, author_id=BOB), THREAD)
    assert [e.message.text for e in log.exchanges] == [QUESTION, "who was Clinton?"]
    assert len(fake.calls("GET", rf"/channels/{THREAD}/messages")) == 1  # looked up once
