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


# A capitalised word that does not open the sentence: a person, place, institution or month.
_NAME = re.compile(r"(?<!^)(?<![.!?\"“]\s)\b[A-Z][a-zA-Z]+\b")
_OPENING_NAME = re.compile(r"^\W*([A-Z][a-z]+)\b")
_PRONOUN_SUBJECT = re.compile(r"^\W*(He|She|They)\b")


# Capitalised openings that are not actors ("Today we...", "Already in...").
_NOT_ACTORS = frozenset(["today", "already", "yet", "soon", "then", "also", "still", "so", "but"])
# Words that turn a statement into its opposite: "we do not ask" is not "we ask".
_NEGATION = re.compile(
    r"\b(not|no|never|nor|neither|none|nobody|nothing|without|cannot)\b|n't\b", re.IGNORECASE
)


def negated(text: str) -> bool:
    """The statement's polarity: an odd number of negations flips it."""
    return len(_NEGATION.findall(text)) % 2 == 1


def _names_of(text: str) -> set[str]:
    return set(terms(" ".join(_NAME.findall(text.strip()))))


def _subject(sentence: str, previous: str = "") -> str | None:
    """Who the sentence is about, when it opens with a name or with a pronoun for the previous
    sentence's opening name: enough to tell "Clinton was enraged" from "He [Yeltsin] was enraged"."""
    if _PRONOUN_SUBJECT.match(sentence):
        return _subject(previous) if previous else None
    opening = _OPENING_NAME.match(sentence)
    if opening and opening.group(1).lower() not in _NOT_ACTORS and terms(opening.group(1)):
        return opening.group(1)
    return None


@dataclass(frozen=True)
class Evidence:
    """The passages a reply may rest on, pre-split so each draft sentence is aligned cheaply."""

    text: str
    sentences: list[str]
    sentence_terms: list[set[str]]
    all_terms: set[str]
    # Indices of the sentences that open a passage: nothing before them is their context.
    openings: frozenset[int]

    @classmethod
    def of(cls, passages: Iterable[str]) -> Evidence:
        texts = list(passages)
        split: list[str] = []
        openings = set()
        for text in texts:
            openings.add(len(split))
            split += sentences(text)
        per_sentence = [set(terms(s)) for s in split]
        return cls(
            " ".join(texts), split, per_sentence, set().union(*per_sentence), frozenset(openings)
        )

    def _start(self, index: int) -> int:
        return index if index in self.openings else index - 1

    def with_previous(self, index: int) -> set[str]:
        """A sentence's words plus its predecessor's (in the same passage), where its subject is
        often named."""
        return set().union(*self.sentence_terms[self._start(index) : index + 1])

    def context(self, index: int) -> str:
        return " ".join(self.sentences[self._start(index) : index + 1])


def support(sentence: str, evidence: Evidence, asked: frozenset[str] = frozenset()) -> float:
    """How much of the sentence one evidence sentence states. Every claim is checked against that
    one sentence (with the one before it, where a pronoun's name is given): its numbers and dates,
    its names (who did what) and its polarity must be that sentence's, not merely occur somewhere
    in the passages. A word foreign to all of the passages scores zero: that is where a canary
    or a new role would hide. The words the sentence shares with the question must come from the
    aligned sentence or the one before it, so that a true quote is not pinned to the wrong subject."""
    content = set(terms(sentence))
    if not content:
        return 0.0
    if not content <= evidence.all_terms:
        return 0.0  # a word the passages never use is a word the model made up
    numbers = set(_NUMBER.findall(sentence))
    names = _names_of(sentence)
    polarity = negated(sentence)
    actor = _subject(sentence)
    on_topic = content & asked
    best = 0
    for index, source in enumerate(evidence.sentence_terms):
        around = evidence.context(index)
        if not numbers <= set(_NUMBER.findall(around)):
            continue
        if not names <= evidence.with_previous(index):
            continue
        if negated(evidence.sentences[index]) != polarity:
            continue
        previous = evidence.sentences[index - 1] if index not in evidence.openings else ""
        source_actor = _subject(evidence.sentences[index], previous)
        if actor and source_actor and actor != source_actor:
            continue
        stated = content & (source | (names & evidence.with_previous(index)))
        if on_topic <= content & evidence.with_previous(index):
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
