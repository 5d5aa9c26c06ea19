"""Block Kit rendering: escaping and splitting hold for any reply, not only what the core says today."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from adapters.slack.render import (
    CONTEXT_TEXT_LIMIT,
    SECTION_TEXT_LIMIT,
    asked_block,
    escape,
    reply_messages,
    split_escaped,
)
from bot.messages import Citation, Reply
from tests.slack.block_kit import assert_valid_message

_ENTITY_OR_PLAIN = re.compile(r"^([^&<>]|&(amp|lt|gt);)*$")


def _unescape(text: str) -> str:
    return (
        text.replace("\u2060", "").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    )


def test_escape_neutralises_every_kind_of_ping() -> None:
    text = "<!channel> <!here> <!everyone> <@U123> <#C1> <!subteam^S1> @here @channel & done"
    escaped = escape(text)
    assert "<" not in escaped and ">" not in escaped
    assert re.search(r"@(here|channel|everyone)\b", escaped) is None
    assert _unescape(escaped) == text


def test_long_answer_is_split_into_valid_blocks_and_messages() -> None:
    sentence = "NATO & Russia <were> partners once, @here we said. "
    citations = [
        Citation(passage_id=f"p{n}", section=f"Section {n} & more", quote=sentence * 60, passage="")
        for n in range(30)
    ]
    reply = Reply(text=sentence * 400, citations=citations)

    messages = reply_messages(reply, asked=asked_block("alice", "why?"), exchange_id="abc")

    assert len(messages) > 1
    for message in messages:
        assert_valid_message(message)
    blocks = [block for message in messages for block in message["blocks"]]
    sections = [b["text"]["text"] for b in blocks if b["type"] == "section"]
    assert len(sections) >= 7
    assert all(len(text) <= SECTION_TEXT_LIMIT for text in sections)
    assert blocks[1]["block_id"] == "persona-answer:abc"
    assert " ".join(_unescape(text) for text in sections).split() == reply.text.split()
    contexts = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert all(len(text) <= CONTEXT_TEXT_LIMIT for text in contexts)
    assert sum(text.startswith("*[") for text in contexts) == len(citations)
    assert "*[30] Section 29 &amp; more*" in " ".join(contexts)


@given(st.text(alphabet=st.sampled_from(list("ab &<>@here\n")), min_size=1, max_size=400))
def test_split_never_cuts_an_entity_and_loses_nothing(text: str) -> None:
    pieces = split_escaped(text, 16)
    assert all(0 < len(piece) <= 16 for piece in pieces)
    assert all(_ENTITY_OR_PLAIN.match(piece.replace("\u2060", "")) for piece in pieces)
    rejoined = "".join(_unescape(piece) for piece in pieces)
    assert re.sub(r"\s", "", rejoined) == re.sub(r"\s", "", text)
