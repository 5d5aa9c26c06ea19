"""Bad input: invisible characters, control characters, oversize messages, overflowing context."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from adapters.discord.formatting import render_reply
from bot.core import DialogueCore
from bot.factory import build_core
from bot.messages import IncomingMessage, Verdict
from bot.settings import Settings, load_settings
from tests.fakes import MemoryLog, ScriptedGenerator

QUESTION = "Why do emerging democracies want to join NATO?"
# Below this a 10 MB refusal is fast whatever its ratio to the 100 KB one (measured: ~0.2 ms each).
OVERSIZE_FLOOR_MS = 2.0
INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff\u202e\u202c\u2066\u2069\u00ad\U000e0041"
CONTROL = "\x00\x01\x07\x08\x1b\x7f\x9b"


def _input_verdicts(reply_moderation: list[Verdict]) -> dict[str, str]:
    return {v.check: v.detail for v in reply_moderation}


def test_invisible_and_control_characters_are_stripped_before_anything_else(
    settings: Settings, generator: ScriptedGenerator
) -> None:
    # The model's addition on (off by default), so that what the model is shown can be checked.
    core = build_core(settings.model_copy(update={"model_adds": True}), generator=generator)
    noisy = "".join(ch + INVISIBLE[i % len(INVISIBLE)] for i, ch in enumerate(QUESTION)) + CONTROL
    exchange = core.respond(IncomingMessage(text=noisy))
    clean = core.respond(IncomingMessage(text=QUESTION, channel="clean"))
    verdicts = _input_verdicts(exchange.reply.moderation)
    assert verdicts["invisible_characters"] == f"{len(QUESTION) + len(CONTROL)} removed"
    assert exchange.reply.text == clean.reply.text and exchange.reply.grounded
    follow_up = core.respond(IncomingMessage(text="And why did Russia oppose that?"))
    assert follow_up.reply.text
    assert generator.requests  # the model was asked, on both turns of the noisy conversation
    for asked in generator.requests:
        # The model never saw them: not in the question, not in the conversation's history.
        assert not set(INVISIBLE + CONTROL) & set(asked.system + asked.user)


def _refusal_ms(core: DialogueCore, text: str) -> float:
    """Median of five refusals of `text`, in milliseconds (robust to a busy shared machine)."""
    spent = []
    for attempt in range(5):
        started = time.perf_counter()
        reply = core.handle(IncomingMessage(text=text, channel=f"oversize-{attempt}"))
        spent.append((time.perf_counter() - started) * 1000)
        assert reply.refused and reply.text == core.canned("too_long")
    return statistics.median(spent)


def test_oversize_input_is_refused_before_any_work_that_grows_with_its_size(
    core: DialogueCore, generator: ScriptedGenerator, log: MemoryLog
) -> None:
    """A 10 MB message costs what a 100 KB one does: the size check comes before cleaning and
    screening, which read every character (a linear pass would make it ~100 times dearer)."""
    small = (QUESTION + " ") * (100_000 // (len(QUESTION) + 1))
    large = (QUESTION + " ") * (10_000_000 // (len(QUESTION) + 1))
    small_ms, large_ms = _refusal_ms(core, small), _refusal_ms(core, large)
    print(f"\noversize refused in {small_ms:.2f} ms (100 KB) and {large_ms:.2f} ms (10 MB)")
    assert large_ms < max(OVERSIZE_FLOOR_MS, 5 * small_ms)
    assert generator.requests == []
    assert len(log.exchanges) == 10  # still on record, for moderators


def test_input_just_over_the_limit_after_cleaning_is_refused_and_just_under_is_answered(
    core: DialogueCore, settings: Settings
) -> None:
    limit = settings.max_input_chars
    filler = " and NATO" * limit
    under = (QUESTION + filler)[:limit]
    over = (QUESTION + filler)[: limit + 1]
    assert core.handle(IncomingMessage(text=over)).text == core.canned("too_long")
    assert core.handle(IncomingMessage(text=under, channel="u")).text != core.canned("too_long")


def test_a_long_allowed_question_with_many_passages_does_not_crash(tmp_path: Path) -> None:
    """Everything at its maximum: a 2,000-character question, 8 passages in the prompt."""
    settings = load_settings(
        data_dir=tmp_path / "data",
        passages_in_prompt=8,
        max_citations=10,
        max_tokens=1024,
        model_adds=True,
    )
    generator = ScriptedGenerator(lambda request: request.user)  # echoes the whole prompt back
    core = build_core(settings, generator=generator, log=MemoryLog())
    words = ["NATO", "enlargement", "Yeltsin", "Clinton", "Poland", "partnership", "peace"]
    question = " ".join(words[i % len(words)] for i in range(400))[:1999] + "?"
    reply = core.handle(IncomingMessage(text=question))
    assert reply.citations
    # When the model is asked, it is shown all eight passages.
    assert all(len(request.user) > 4000 for request in generator.requests)
    # The echoed prompt is the model's text: none of its scaffolding may reach the user.
    for scaffolding in ("Passages from my essay", "Answer in one or two short sentences", "[1]"):
        assert scaffolding not in reply.text, reply.text
    assert len(reply.text) <= settings.answer_chars_limit + 400  # answer budget plus one quote
    assert render_reply(reply)
