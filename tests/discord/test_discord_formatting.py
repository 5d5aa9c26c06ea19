"""Reply → Discord text: citations shown, mentions defused, long text split where a reader would."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from adapters.discord import neutralise_mentions, render_reply, split_message
from bot.messages import Citation, Reply

SENTENCE = "NATO enlargement was never aimed against a democratic Russia. "


def test_a_5000_character_answer_splits_into_valid_messages_at_sentence_ends() -> None:
    text = SENTENCE * 80  # 4,960 characters, no line breaks
    assert len(text) > 4900
    chunks = split_message(text)
    assert len(chunks) == 3
    assert all(len(chunk) <= 2000 for chunk in chunks)
    assert all(chunk.endswith("Russia.") for chunk in chunks)
    assert " ".join(chunks) == text.strip()


def test_paragraph_and_line_breaks_are_preferred_over_sentence_ends() -> None:
    first = SENTENCE * 20
    text = first + "\n\n" + SENTENCE * 20
    chunks = split_message(text)
    assert chunks == [first.strip(), (SENTENCE * 20).strip()]


def test_a_block_quote_cut_in_two_stays_a_quote() -> None:
    text = "Answer.\n\n> " + SENTENCE * 40
    chunks = split_message(text)
    assert len(chunks) == 2
    assert chunks[1].startswith("> ")


def test_text_without_any_boundary_is_cut_hard_at_the_limit() -> None:
    chunks = split_message("x" * 4500)
    assert [len(c) for c in chunks] == [2000, 2000, 500]


@given(st.text(alphabet=st.sampled_from("ab .\n!?"), min_size=0, max_size=7000))
def test_chunks_are_never_empty_or_too_long_and_lose_no_words(text: str) -> None:
    chunks = split_message(text)
    assert all(0 < len(chunk) <= 2000 for chunk in chunks)
    words = [w for w in re.split(r"\s+", text) if w]
    rejoined = [w for w in re.split(r"\s+", " ".join(chunks)) if w and w != ">"]
    assert rejoined == words


def test_every_kind_of_ping_is_defused_and_still_readable() -> None:
    text = "@everyone @here <@123456789012345678> <@!123456789012345678> <@&987654321098765432>"
    safe = neutralise_mentions(text)
    assert not re.search(r"@(everyone|here)|<@[!&]?\d", safe)
    assert safe.replace("\u200b", "") == text


def test_reply_shows_answer_then_each_cited_section_and_quote() -> None:
    reply = Reply(
        text="Partnership was the goal @everyone.",
        citations=[
            Citation(
                passage_id="p1", section="The Promise of the New Era", quote="A quote.", passage="x"
            ),
            Citation(
                passage_id="p2",
                section="Troubled *Partnership*",
                quote="Line one.\nLine two.",
                passage="y",
            ),
        ],
    )
    text = render_reply(reply)
    assert text.startswith("Partnership was the goal @\u200beveryone.")
    assert "1. **The Promise of the New Era**\n> A quote." in text
    assert "2. **Troubled \\*Partnership\\***\n> Line one.\n> Line two." in text


def test_a_refusal_has_no_sources_block() -> None:
    assert (
        render_reply(Reply(text="I only know my essay.", refused=True)) == "I only know my essay."
    )
