"""The terminal way in: a REPL with memory and streamed, already-grounded sentences."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from bot.core import DialogueCore
from bot.messages import Citation, IncomingMessage

HELP = "Commands: /sources (passages behind the last answer), /reset (forget this chat), /quit."


def render_citations(console: Console, citations: list[Citation]) -> None:
    for number, citation in enumerate(citations, 1):
        console.print(f"  [{number}] [bold]{citation.section}[/bold] ({citation.passage_id})")
        console.print(f'      "{citation.quote}"', style="dim", markup=False)


def chat(core: DialogueCore, console: Console, read: Callable[[str], str] = input) -> None:
    """Runs until /quit or end of input; bad input gets the core's in-voice answer, never a crash."""
    meta = core.knowledge.metadata
    console.print(f"[bold]{meta.persona_name}[/bold] (AI persona) — {meta.title}")
    console.print(meta.disclosure, style="italic")
    console.print(HELP, style="dim")
    session = IncomingMessage(text="", user_name="you")
    while True:
        try:
            line = read("you> ")
        except (EOFError, KeyboardInterrupt):
            console.print()
            return
        command = line.strip().lower()
        if command in {"/quit", "/exit"}:
            return
        if command == "/reset":
            core.forget(session)
            console.print("(conversation forgotten)", style="dim")
            continue
        if command == "/sources":
            citations = core.last_citations(session)
            if citations:
                render_citations(console, citations)
            else:
                console.print("(no sources yet: ask me something first)", style="dim")
            continue
        if command.startswith("/"):
            console.print(HELP, style="dim")
            continue
        console.print(f"{meta.persona_name.split()[0].lower()}> ", end="", style="bold")
        reply = core.handle(
            session.model_copy(update={"text": line}),
            on_text=lambda piece: console.print(piece, end="", markup=False, highlight=False),
        )
        if not reply.citations and not reply.text:
            console.print("(no answer)", style="dim")
        console.print()
        if reply.citations:
            console.print(
                f"  sources: {', '.join(c.passage_id for c in reply.citations)}  (/sources)",
                style="dim",
            )
