"""Keeps only what the cited passages support; a tiny model's prose is checked, never trusted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.text import normalize, sentences, terms

# Share of a sentence's content words that the passages must contain for it to count as supported.
SUPPORT_THRESHOLD = 0.85
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_REFERENCE = re.compile(r"\s*\[\d+\]")
_NOT_ANSWER = re.compile(
    r"https?://|www\.|@|<[!#@]|\bas an ai\b|\blanguage model\b|\binstruction|\bprompt\b|\bpassage",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class GroundingResult:
    kept: list[str]
    dropped: list[str]


_NAME = re.compile(r"(?<=[a-z,;:] )[A-Z][a-z]+(?:[A-Z][a-z]+)?")


@dataclass(frozen=True)
class Evidence:
    """The passages a reply may rest on, pre-split so each draft sentence is aligned cheaply."""

    text: str
    sentence_terms: list[set[str]]
    all_terms: set[str]

    @classmethod
    def of(cls, passages: Iterable[str]) -> Evidence:
        texts = list(passages)
        per_sentence = [set(terms(s)) for text in texts for s in sentences(text)]
        return cls(" ".join(texts), per_sentence, set().union(*per_sentence))

    def with_previous(self, index: int) -> set[str]:
        """A sentence's words plus its predecessor's, where its subject is often named."""
        previous = self.sentence_terms[index - 1] if index else set()
        return previous | self.sentence_terms[index]


def support(sentence: str, evidence: Evidence, asked: frozenset[str] = frozenset()) -> float:
    """How much of the sentence one evidence sentence states (zero if any word is foreign to all
    of the passages: that is where a canary or a new role would hide); names may come from its neighbours,
    as a pronoun in the source often stands for a name given a sentence earlier. The words the
    sentence shares with the question must come from that evidence sentence or the one before it,
    so that a true quote is not pinned to the wrong subject."""
    content = set(terms(sentence))
    if not content:
        return 0.0
    if any(number not in evidence.text for number in _NUMBER.findall(sentence)):
        return 0.0
    names = _NAME.findall(sentence)
    if any(name not in evidence.text for name in names):
        return 0.0
    if not content <= evidence.all_terms:
        return 0.0  # a word the passages never use is a word the model made up
    name_terms = set(terms(" ".join(names))) & evidence.all_terms
    on_topic = content & asked
    best = 0
    for index, source in enumerate(evidence.sentence_terms):
        stated = content & (source | name_terms)
        if on_topic <= content & (evidence.with_previous(index) | name_terms):
            best = max(best, len(stated))
    return best / len(content)


def check(
    draft: str, passages: Sequence[str], question: str | None = None, minimum_terms: int = 3
) -> GroundingResult:
    """Keeps the draft's sentences that one passage sentence supports and that answer the question
    (share a word with it and add one), without repeats."""
    evidence = Evidence.of(passages)
    asked = set(terms(question)) if question is not None else None
    kept: list[str] = []
    dropped: list[str] = []
    seen: set[frozenset[str]] = set()
    for sentence in sentences(_REFERENCE.sub("", draft.strip())):
        content = frozenset(terms(sentence))
        complete = sentence.rstrip("\"'”").endswith((".", "!"))
        relevant = asked is None or bool(content & asked and content - asked)
        if (
            complete
            and relevant
            and len(content) >= minimum_terms
            and content not in seen
            and not _NOT_ANSWER.search(sentence)
            and support(sentence, evidence, frozenset(asked or ())) >= SUPPORT_THRESHOLD
        ):
            kept.append(sentence)
            seen.add(content)
        else:
            dropped.append(sentence)
    return GroundingResult(kept, dropped)


def covers(text: str, quote: str, threshold: float = 0.8) -> bool:
    """True when `text` already carries most of what `quote` says, so quoting it again adds nothing."""
    quote_terms = set(terms(quote))
    if not quote_terms:
        return True
    return len(quote_terms & set(terms(text))) / len(quote_terms) >= threshold


def is_verbatim(fragment: str, passages: Sequence[str]) -> bool:
    needle = normalize(fragment)
    return any(needle in normalize(p) for p in passages)
