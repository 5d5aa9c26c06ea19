"""The scope gate on questions the dev set does not hold: general mechanisms, not special cases."""

from __future__ import annotations

import pytest

from bot.core import DialogueCore
from bot.messages import IncomingMessage
from bot.understanding.answerability import names_in

IN_SCOPE = [
    "What did the leak of the Warsaw story cost everyone?",
    "What share of the vote did you win in Murmansk?",
    "Why did the reforms in Russia fail?",
    "What happened to the Founding Act of 1997?",
    "What did Talbott write?",
    "Tell me about enlargement.",
    "Who is Putin?",
    "What did Yeltsin call the new situation at the CSCE summit?",
]
OUT_OF_SCOPE = [
    "Who won the last football world cup?",
    "What is the best programming language?",
    "How old are you?",
    "What's the best pizza in New York?",
    "What do you think about the war in Ukraine?",
    "What is the population of Moscow?",
    "Where do you live now?",
]


@pytest.mark.parametrize("question", IN_SCOPE)
def test_answers_what_the_essay_speaks_to(core: DialogueCore, question: str) -> None:
    assert not core.handle(IncomingMessage(text=question)).refused


@pytest.mark.parametrize("question", OUT_OF_SCOPE)
def test_declines_words_the_essay_merely_happens_to_use(core: DialogueCore, question: str) -> None:
    reply = core.handle(IncomingMessage(text=question))
    assert reply.refused
    assert any(v.check == "scope" and not v.passed for v in reply.moderation)


def test_names_are_the_essays_capitalised_words_mid_sentence() -> None:
    found = names_in(["When in April 1992 Vaclav Havel came to Moscow. The talks failed."])
    assert {"vaclav", "havel", "moscow", "april"} <= found
    assert "talk" not in found


def test_adverbs_and_function_words_are_not_topics() -> None:
    from bot.text import terms

    assert terms("What will the Russian people eventually do, exactly?") == ["russian", "peopl"]
    assert terms("family monopoly ally") == ["famili", "monopoli", "alli"]
