"""The terminal way in: a REPL with memory and streamed, already-grounded sentences."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import uuid4

from rich.console import Console
from rich.control import Control
from rich.padding import Padding
from rich.segment import ControlType
from rich.text import Text

from bot.core import DialogueCore
from bot.messages import Citation, IncomingMessage, Reply

HELP = "Commands: /sources (passages behind the last answer), /reset (forget this chat), /quit."


def render_citations(console: Console, citations: list[Citation]) -> None:
    """Each passage's heading, and its quote wrapped in an indented block."""
    for number, citation in enumerate(citations, 1):
        heading = Text.assemble(
            f"  [{number}] ", (citation.section, "bold"), f" ({citation.passage_id})"
        )
        console.print(heading)
        console.print(Padding(Text(f'"{citation.quote}"', style="dim"), (0, 0, 0, 6), expand=False))


class StreamedText:
    """Prints text as it arrives, wrapped by rich beside a prefix (continuation lines indented
    under the text), so a word is never split. A finished line is printed at once; on a
    terminal the line still being written is shown too and redrawn as it grows."""

    def __init__(self, console: Console, prefix: str) -> None:
        self._console = console
        self._prefix = Text(prefix, style="bold")
        self._text = Text()
        self._printed = 0
        self._partial_shown = False

    def add(self, piece: str) -> None:
        self._text.append(piece)
        self._show(final=False)

    def finish(self) -> None:
        self._show(final=True)

    def _lines(self) -> list[Text]:
        width = max(self._console.width - len(self._prefix), 20)
        indent = Text(" " * len(self._prefix))
        lines = self._text.wrap(self._console, width)
        for line in lines:
            line.rstrip()
        return [
            Text.assemble(self._prefix if number == 0 else indent, line)
            for number, line in enumerate(lines)
        ]

    def _show(self, final: bool) -> None:
        lines = self._lines()
        done = lines if final else lines[:-1]
        self._erase_partial()
        for line in done[self._printed :]:
            self._console.print(line)
        self._printed = len(done)
        if not final and self._console.is_terminal:
            self._console.print(lines[-1], end="")
            self._partial_shown = True

    def _erase_partial(self) -> None:
        if self._partial_shown:
            self._console.control(
                Control(ControlType.CARRIAGE_RETURN, (ControlType.ERASE_IN_LINE, 2))
            )
            self._partial_shown = False


def chat(core: DialogueCore, console: Console, read: Callable[[str], str] = input) -> None:
    """Runs until /quit or end of input; bad input gets the core's in-voice answer, never a crash."""
    meta = core.knowledge.metadata
    console.print(f"[bold]{meta.persona_name}[/bold] (AI persona) — {meta.title}")
    console.print(meta.disclosure, style="italic")
    console.print(HELP, style="dim")
    # One chat session is one conversation; a new session does not continue an earlier one.
    session = IncomingMessage(text="", user_name="you", thread=f"chat-{uuid4().hex[:12]}")
    prefix = f"{meta.persona_name.split()[0].lower()}> "
    last: Reply | None = None
    while True:
        try:
            line = read("you> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        received = datetime.now(UTC)
        command = line.strip().lower()
        if command in {"/quit", "/exit"}:
            return
        if command == "/reset":
            core.forget(session)
            last = None
            console.print("(conversation forgotten)", style="dim")
            continue
        if command == "/sources":
            if last is None:
                console.print("(no sources yet: ask me something first)", style="dim")
            elif last.citations:
                render_citations(console, last.citations)
            else:
                console.print("(the last answer had no sources)", style="dim")
            continue
        if command.startswith("/"):
            console.print(HELP, style="dim")
            continue
        stream = StreamedText(console, prefix)
        last = core.handle(
            session.model_copy(update={"text": line, "received_at": received}), on_text=stream.add
        )
        stream.finish()
        if not last.text:
            console.print("(no answer)", style="dim")
        if last.citations:
            sources = ", ".join(c.passage_id for c in last.citations)
            console.print(
                Padding(Text(f"sources: {sources} (/sources)", style="dim"), (0, 2), expand=False)
            )
