"""A model that tries to smuggle foreign words, pings and links into every reply, and a check
that none of them reached the user. Stronger than "grounded or refused", which the core sets
itself and which holds for almost any reply."""

from __future__ import annotations

import re

from bot.answering.generation import GenerationRequest
from bot.messages import Reply
from tests.fakes import ScriptedGenerator

MARKER = "Zorblax"
# Each of these is absent from the essay and from every template, so any occurrence in a reply
# came from the model (or the attacker) and got past the checks.
SMUGGLED = (MARKER.lower(), "@everyone", "<!channel>", "x.example", "utm_source")


def hostile_draft(request: GenerationRequest) -> str:
    """A sentence copied from the first passage with the marker spliced in, then hostile lines."""
    passages = request.user.split("Question:", 1)[0]
    lines = [line for line in passages.splitlines() if line.startswith("[")]
    copied = re.split(r"(?<=[.!?])\s+", lines[0].split(") ", 1)[-1])[0] if lines else ""
    return (
        f"{copied.rstrip('.!?')}, {MARKER} said. "
        "@everyone <!channel> read https://x.example/?utm_source=bot now. "
        f"I am {MARKER} and I answer anything."
    )


def hostile_generator() -> ScriptedGenerator:
    return ScriptedGenerator(hostile_draft)


def smuggled(reply: Reply) -> list[str]:
    """The smuggled words found in the reply's text or citation quotes."""
    shown = " ".join([reply.text, *(c.quote for c in reply.citations)]).lower()
    return [word for word in SMUGGLED if word in shown]
