"""Keeps only what the cited passages support; a tiny model's prose is checked, never trusted."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.text import normalize, sentences, terms

# Share of a sentence's content words that the passages must contain for it to count as supported.
SUPPORT_THRESHOLD = 0.8
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


def support(sentence: str, evidence_terms: set[str], evidence_text: str) -> float:
    """Fraction of the sentence's content words found in the evidence; numbers must match exactly."""
    content = set(terms(sentence))
    if not content:
        return 0.0
    numbers = set(_NUMBER.findall(sentence))
    if any(number not in evidence_text for number in numbers):
        return 0.0
    return len(content & evidence_terms) / len(content)


def evidence_of(passages: Iterable[str]) -> tuple[set[str], str]:
    texts = list(passages)
    found: set[str] = set()
    for text in texts:
        found.update(terms(text))
    return found, " ".join(texts)


def check(draft: str, passages: Sequence[str], minimum_terms: int = 3) -> GroundingResult:
    """Splits the draft into sentences and keeps those the passages support, without repeats."""
    evidence_terms, evidence_text = evidence_of(passages)
    kept: list[str] = []
    dropped: list[str] = []
    seen: set[frozenset[str]] = set()
    for sentence in sentences(_REFERENCE.sub("", draft.strip())):
        content = frozenset(terms(sentence))
        complete = sentence.rstrip('"').endswith((".", "!"))
        if (
            complete
            and len(content) >= minimum_terms
            and content not in seen
            and not _NOT_ANSWER.search(sentence)
            and support(sentence, evidence_terms, evidence_text) >= SUPPORT_THRESHOLD
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
