"""The scope gate: decides, before any model call, whether the essay speaks to a question.

Three signals, all from the essay itself: how much of the question's information the essay's
vocabulary holds, whether one passage holds it together (words scattered over unrelated passages
are a coincidence, not a topic), and whether the question names someone or something the essay
names. A lone common word ("How old are you?") is not a topic unless the essay is about it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.text import sentences, terms
from bot.understanding.retrieval import SearchResult

# Below this share of the question's information in one passage, the words are a coincidence...
_TOGETHER = 0.5
# ...unless the question names something the essay names: then a lower share will do, a little
# higher when the question also uses words the essay never does.
_TOGETHER_WITH_NAME = 0.3
_TOGETHER_WITH_NAME_AND_NEW_WORDS = 0.4
# A word the essay never uses is often the very topic ("weather" in Washington): with one, the
# essay's vocabulary must hold clearly more of the question than the usual minimum.
_NEW_WORDS_MARGIN = 0.15
_CAPITALISED = re.compile(r"(?<![.!?]\s)(?<!^)\b[A-Z][A-Za-z'-]+")


@dataclass(frozen=True)
class ScopeDecision:
    in_scope: bool
    reason: str


def names_in(texts: Iterable[str]) -> frozenset[str]:
    """Stems of the capitalised words the essay uses mid-sentence: people, places, institutions."""
    found: set[str] = set()
    for text in texts:
        for sentence in sentences(text):
            found.update(terms(" ".join(_CAPITALISED.findall(sentence))))
    return frozenset(found)


class ScopeGate:
    def __init__(
        self, passages: Iterable[str], subject: Iterable[str], min_coverage: float
    ) -> None:
        self._names = names_in(passages)
        self._subject = frozenset(terms(" ".join(subject)))
        self._min_coverage = min_coverage

    def decide(self, question: str, search: SearchResult) -> ScopeDecision:
        asked = set(search.query_terms)
        named = bool(asked & self._names & set(terms(" ".join(_CAPITALISED.findall(question)))))
        unknown = asked - set(search.matched_terms)
        detail = (
            f"coverage {search.coverage:.2f}, together {search.passage_coverage:.2f}, "
            f"names {'yes' if named else 'no'}, unknown {', '.join(sorted(unknown)) or 'none'}"
        )
        minimum = self._min_coverage + (_NEW_WORDS_MARGIN if unknown else 0.0)
        if not search.passages or search.coverage < minimum:
            return ScopeDecision(False, detail)
        if len(asked) == 1 and not (named or asked & self._subject):
            return ScopeDecision(False, f"{detail}; one common word")
        needed = _TOGETHER
        if named:
            needed = _TOGETHER_WITH_NAME_AND_NEW_WORDS if unknown else _TOGETHER_WITH_NAME
        together = search.passage_coverage >= needed
        return ScopeDecision(together, detail)
