"""The terminal chat as a newcomer meets it: arrival times, wrapping at 80 columns, /sources, streaming."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

from rich.console import Console

from adapters.terminal import StreamedText, chat
from bot.answering.generation import Generation, GenerationRequest, TokenSink
from bot.core import DialogueCore
from tests.fakes import MemoryLog


def console(width: int = 80, terminal: bool = False) -> Console:
    return Console(file=io.StringIO(), width=width, force_terminal=terminal, color_system=None)


def output(shown: Console) -> str:
    file = shown.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def lines_of(*typed: str) -> Callable[[str], str]:
    """A `read` that types these lines, then ends the input as Ctrl-D does."""
    queue: Iterator[str] = iter(typed)

    def read(_prompt: str) -> str:
        try:
            return next(queue)
        except StopIteration:
            raise EOFError from None

    return read


def test_each_question_is_logged_at_its_own_arrival_time(
    core: DialogueCore, log: MemoryLog
) -> None:
    questions = [
        "What was Clinton's election motto?",
        "Why did Yeltsin feel betrayed?",
        "What's the weather like in Paris tomorrow?",
    ]
    chat(core, console(), lines_of(*questions))
    assert [e.message.text for e in log.exchanges] == questions
    times = [e.message.received_at for e in log.exchanges]
    assert times[0] < times[1] < times[2]


def test_long_answers_wrap_between_words_beside_the_prefix(
    core: DialogueCore, log: MemoryLog
) -> None:
    shown = console(width=80)
    chat(core, shown, lines_of("Who accompanied Warren Christopher to Moscow in October 1993?"))
    reply = log.exchanges[-1].reply.text
    assert len(reply) > 160  # three lines at least, so wrapping is exercised
    lines = output(shown).splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith("andrei> "))
    end = next(n for n, line in enumerate(lines) if line.startswith("  sources: "))
    body = lines[start:end]
    assert len(body) >= 3 and all(len(line) <= 80 for line in body)
    assert all(line.startswith(" " * 8) for line in body[1:])  # indented under the text
    words = " ".join(line.removeprefix("andrei> ").strip() for line in body).split()
    assert words == reply.split()  # a word split across two lines would not match


def test_sources_after_a_refusal_say_the_last_answer_had_none(core: DialogueCore) -> None:
    shown = console()
    chat(
        core,
        shown,
        lines_of(
            "/sources",
            "What's the weather like in Paris tomorrow?",
            "/sources",
            "What was Clinton's election motto?",
            "/sources",
        ),
    )
    text = output(shown)
    assert text.count("no sources yet: ask me something first") == 1
    assert text.count("the last answer had no sources") == 1
    assert "[1] " in text.split("the last answer had no sources", 1)[1]


class WatchedGenerator:
    """Notes what the screen showed when the model was asked, then adds a supported sentence."""

    model_id = "watched-fake"

    def __init__(self, screen: Console) -> None:
        self.screen = screen
        self.seen_before = ""

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        self.seen_before = output(self.screen)
        return Generation(text=ADDED, prompt=request.user)


ADDED = (
    "The administration of Clinton promised and did help us through programs of the Monetary Fund."
)


def test_the_direct_answer_is_on_screen_before_the_model_starts(
    core: DialogueCore, log: MemoryLog
) -> None:
    shown = console(terminal=True)
    watched = WatchedGenerator(shown)
    core.generator = watched
    core.settings = core.settings.model_copy(update={"model_adds": True})
    chat(core, shown, lines_of("What was Clinton's election motto?"))
    assert "President Clinton was elected under the motto" in watched.seen_before
    assert log.exchanges[-1].reply.text.endswith(ADDED)
    assert "Monetary Fund" in output(shown)


def test_finished_lines_stream_even_when_the_output_is_not_a_terminal() -> None:
    shown = console(width=40)
    stream = StreamedText(shown, "andrei> ")
    stream.add("one two three four five six seven eight nine ten eleven")
    assert output(shown) == "andrei> one two three four five six\n"
    stream.add(" twelve.")
    stream.finish()
    assert output(shown).splitlines()[1:] == [
        "        seven eight nine ten eleven",
        "        twelve.",
    ]
