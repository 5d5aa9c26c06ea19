"""Streamed replies on the wire: the direct answer at once, throttled edits, the core's reply at the end."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from typing import Any

from adapters.discord.formatting import render_reply, render_text
from bot.core import DialogueCore, TextSink
from bot.messages import Exchange, IncomingMessage
from tests.discord.conftest import BotFactory, FakeModerationStore
from tests.discord.fake_discord import GENERAL, GUILD_ID, FakeDiscord, answered, until

QUESTION = "Why do emerging democracies want to join NATO?"
DIRECT = "Emerging democracies wanted to join NATO for security."
MORE = [
    " They looked to the West for support.",
    " Moscow saw it differently.",
    " I argued for partnership instead.",
]
INTERVAL = 0.4


class PacedQueue:
    """The real core's exchange, its text streamed piece by piece from a worker thread with
    pauses, as a model writing sentence after sentence would; the pieces add up to the reply."""

    def __init__(
        self, core: DialogueCore, pieces: list[str], pause: float, delay: float = 0.0
    ) -> None:
        self.core = core
        self.pieces = pieces
        self.pause = pause
        self.delay = delay  # before the first piece: a queue or a slow understanding
        self.depth = 0
        self.exchanges: list[Exchange] = []

    async def respond(self, message: IncomingMessage, on_text: TextSink | None = None) -> Exchange:
        exchange = await asyncio.to_thread(self.core.respond, message)
        exchange.reply.text = "".join(self.pieces)

        def stream() -> None:
            threading.Event().wait(self.delay)
            for number, piece in enumerate(self.pieces):
                if number:
                    threading.Event().wait(self.pause)
                if on_text:
                    on_text(piece)

        await asyncio.to_thread(stream)
        self.exchanges.append(exchange)
        return exchange

    def close(self) -> None:
        return None


def _gaps(times: list[float]) -> list[float]:
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_the_direct_answer_is_posted_at_once_then_edited_no_faster_than_the_interval(
    fake: FakeDiscord, start_bot: BotFactory, core: DialogueCore
) -> None:
    queue = PacedQueue(core, [DIRECT, *MORE], pause=0.15)
    await start_bot(queue=queue, edit_interval_seconds=INTERVAL)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    final = (await answered(fake, GENERAL))[0]
    posts = fake.calls("POST", rf"/channels/{GENERAL}/messages")
    assert len(posts) == 1
    assert posts[0].body["content"] == render_text(DIRECT)  # the direct answer, before the rest
    edits = fake.edits(final["id"])
    assert 1 <= len(edits) < len(MORE) + 1  # coalesced: fewer edits than pieces
    assert all(gap >= INTERVAL * 0.95 for gap in _gaps([posts[0].at] + [e.at for e in edits]))
    exchange = queue.exchanges[0]
    assert final["content"] == render_reply(exchange.reply)  # the core's reply, exactly
    assert edits[-1].body["components"], "the finished reply carries the vote buttons"
    assert all(not e.body.get("components") for e in edits[:-1])


async def test_typing_shows_only_while_nothing_is_posted(
    fake: FakeDiscord, start_bot: BotFactory, core: DialogueCore
) -> None:
    queue = PacedQueue(core, [DIRECT, *MORE], pause=0.1, delay=1.2)
    await start_bot(queue=queue)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    await answered(fake, GENERAL)
    typing = fake.calls("POST", rf"/channels/{GENERAL}/typing")
    first_post = fake.calls("POST", rf"/channels/{GENERAL}/messages")[0]
    assert typing, "a slow start shows typing…"
    assert all(t.at < first_post.at for t in typing)


async def test_ask_streams_through_its_follow_up_message(
    fake: FakeDiscord, start_bot: BotFactory, core: DialogueCore, moderation: FakeModerationStore
) -> None:
    queue = PacedQueue(core, [DIRECT, *MORE], pause=0.15)
    await start_bot(queue=queue, edit_interval_seconds=INTERVAL)
    asked = f"{QUESTION} see https://example.com/nato?utm_source=x"
    await fake.dispatch("INTERACTION_CREATE", fake.command("ask", {"question": asked}))

    final = (await answered(fake, GENERAL))[0]
    follow_ups = fake.calls("POST", r"/webhooks/\d+/[^/]+")
    assert len(follow_ups) == 1
    quoted = f"> {QUESTION} see <https://example.com/nato>\n\n"
    assert follow_ups[0].body["content"] == quoted + render_text(DIRECT)
    assert follow_ups[0].body["flags"] & 4  # SUPPRESS_EMBEDS: no link preview either way
    edits = fake.edits(final["id"])
    assert edits and all(re.fullmatch(r"/webhooks/\d+/[^/]+/messages/\d+", e.path) for e in edits)
    assert all(gap >= INTERVAL * 0.95 for gap in _gaps([follow_ups[0].at] + [e.at for e in edits]))
    assert final["content"] == quoted + render_reply(queue.exchanges[0].reply)
    assert queue.exchanges[0].message.text == QUESTION + " see"  # the link is not a word
    await until(lambda: moderation.deliveries)  # recorded once the last edit is through
    [(_, message_id, link, delivered, _)] = moderation.deliveries
    assert (message_id, delivered) == (final["id"], True)
    assert link == f"https://discord.com/channels/{GUILD_ID}/{GENERAL}/{final['id']}"


async def test_a_long_stream_continues_in_new_messages_without_breaking_a_citation(
    fake: FakeDiscord, start_bot: BotFactory, core: DialogueCore
) -> None:
    sentence = " Enlargement had to be paced with care, as I told my colleagues in Brussels."
    queue = PacedQueue(core, [DIRECT] + [sentence] * 40, pause=0.005)
    await start_bot(queue=queue, edit_interval_seconds=0.1)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))

    last = (await answered(fake, GENERAL))[0]
    messages = fake.bot_messages(GENERAL)
    assert len(messages) >= 2
    assert all(len(m["content"]) <= 2000 for m in messages)
    expected = render_reply(queue.exchanges[0].reply)
    assert _words(fake.whole_reply(last)) == _words(expected)
    sources = next(m["content"] for m in messages if "**Sources**" in m["content"])
    assert re.search(r"\*\*Sources\*\*\n1\. \*\*[^\n]+\*\*\n> ", sources)  # heading with its quote
    for message in messages[1:]:
        assert not message["content"].startswith(">")


def _words(text: str) -> list[str]:
    return text.split()


async def test_a_reply_to_an_edited_question_is_rewritten_in_place(
    fake: FakeDiscord, start_bot: BotFactory, core: DialogueCore
) -> None:
    await start_bot()
    question = fake.user_message("What did Clinton promise?", mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", question)
    first = (await answered(fake, GENERAL))[0]
    exchanges_before = _texts(fake)

    edited = fake.edited(question, question["content"].replace("Clinton", "Yeltsin"))
    await fake.dispatch("MESSAGE_UPDATE", edited)
    await until(lambda: _texts(fake) != exchanges_before and fake.finished(GENERAL))
    await until(lambda: fake.edits(first["id"])[-1].body.get("components"))
    assert [m["id"] for m in fake.bot_messages(GENERAL)] == [first["id"]]  # same message
    assert len(fake.posted_messages(GENERAL)) == 1
    # An update that does not change the text (an embed resolving) is not a new question.
    await fake.dispatch("MESSAGE_UPDATE", fake.edited(edited, edited["content"]))
    # Nor is a never-edited message's update (its link preview resolving).
    unedited = fake.user_message("What did Kozyrev sign? https://example.com", mention_bot=True)
    await fake.dispatch("MESSAGE_UPDATE", unedited)
    await asyncio.sleep(0.3)
    assert len(fake.posted_messages(GENERAL)) == 1


def _texts(fake: FakeDiscord) -> list[Any]:
    return [m["content"] for m in fake.bot_messages(GENERAL)]


async def test_a_question_deleted_while_it_is_answered_gets_no_answer(
    fake: FakeDiscord, start_bot: BotFactory, core: DialogueCore
) -> None:
    queue = PacedQueue(core, [DIRECT, *MORE], pause=0.3)
    await start_bot(queue=queue)
    question = fake.user_message(QUESTION, mention_bot=True)
    await fake.dispatch("MESSAGE_CREATE", question)
    await until(lambda: fake.posted_messages(GENERAL))  # the direct answer is up

    await fake.dispatch(
        "MESSAGE_DELETE",
        {"id": question["id"], "channel_id": GENERAL, "guild_id": question["guild_id"]},
    )
    await until(lambda: fake.bot_messages(GENERAL) == [])
    await asyncio.sleep(1.2)  # the rest of the stream would have arrived by now
    assert fake.bot_messages(GENERAL) == [] and fake.finished() == []
