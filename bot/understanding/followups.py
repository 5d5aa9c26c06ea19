"""Follow-ups: reading a turn in the light of the conversation it belongs to.

"who helped you get that?" means nothing alone; after "what did Russia take over as the Soviet
Union's continuation state?" it is a question about the essay. A turn leans on the conversation
when it refers back (pronouns, "that", "then", a bare "why?") or is too short to stand alone; a
turn that names a new subject without referring back starts a new topic. "What happened next?"
moves on in the essay from where the last answer ended instead of repeating it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.text import terms

_REFERS_BACK = re.compile(
    r"\b(he|him|his|she|her|hers|they|them|their|it|its|that|this|those|these|there|then"
    r"|the two|both|either|neither|such|same|other|instead|too|also|else)\b",
    re.IGNORECASE,
)
_CONTINUES = re.compile(
    r"^\s*(and|so|but|or|also|then|what about|how about|why\b|how come|really|ok(ay)?|and then)",
    re.IGNORECASE,
)
_NEXT = re.compile(
    r"\b(what|and)\s+(happened|came|followed)\s+(next|after(wards| that)?|then)\b"
    r"|\bwhat\s+next\b|\b(and\s+)?then\s+what\b|\bafter\s+that\s*\?"
    r"|\bwhat happened (later|afterwards)\b",
    re.IGNORECASE,
)
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][A-Za-z'-]+")
# A question with this few content words cannot name its own subject ("why?", "when was that").
_STANDALONE_TERMS = 3
# A chain of follow-ups keeps this much of what it refers back to.
_READ_AS_WORDS = 40


@dataclass(frozen=True)
class Reading:
    """How to read a turn: what it asks, what it refers back to, whether it continues the essay."""

    question: str
    context: str
    follow_up: bool
    moves_on: bool

    @property
    def read_as(self) -> str:
        """The turn with what it referred back to, which the next follow-up may refer back to."""
        if not self.context:
            return self.question
        words = f"{self.question} {self.context}".split()
        return " ".join(words[:_READ_AS_WORDS])


def _names(text: str) -> set[str]:
    return set(terms(" ".join(_CAPITALISED.findall(text))))


def read_turn(question: str, earlier: Sequence[str]) -> Reading:
    """`earlier`: the conversation's previous turns as they were read (oldest first)."""
    if not earlier:
        return Reading(question, "", follow_up=False, moves_on=False)
    if _NEXT.search(question):
        return Reading(question, earlier[-1], follow_up=True, moves_on=True)
    refers_back = bool(_REFERS_BACK.search(question) or _CONTINUES.match(question))
    short = len(set(terms(question))) < _STANDALONE_TERMS
    new_names = _names(question) - set().union(*(set(terms(e)) for e in earlier[-2:]))
    if new_names and not refers_back:
        return Reading(question, "", follow_up=False, moves_on=False)
    if refers_back or short:
        return Reading(question, earlier[-1], follow_up=True, moves_on=False)
    return Reading(question, "", follow_up=False, moves_on=False)
