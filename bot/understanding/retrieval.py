"""Finds the essay passages a question is about, and says how much of the question the essay covers."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import bm25s
import numpy as np

from bot.knowledge import Passage
from bot.text import sentences, terms

# How much earlier user turns weigh against the current question when a follow-up is retrieved.
_HISTORY_WEIGHT = 0.35
# A sentence from a lower-ranked passage must beat the top passage's best by this factor.
_LOWER_RANK_DISCOUNT = 0.85
_QUOTE_CHARS = 350
# A short best sentence rarely says it all ("...had a typo." / "The word "not" was absent.").
_BRIEF_CHARS = 120
# Questions about the author's own stance are answered by sentences that voice one.
_ASKS_STANCE = re.compile(
    r"\b(feel|felt|think|thought|opinion|view|believe|attitude|react|reaction|position|stance"
    r"|consider|credo|stand|make of|hope|fear|regret)\b",
    re.IGNORECASE,
)
_ADDRESSES_PERSONA = re.compile(r"\b(you|your|yours|yourself)\b", re.IGNORECASE)
_VOICES_STANCE = re.compile(
    r"\b(I|my)\b[^.]{0,40}\b(believe|think|thought|feel|felt|heart|mind|view|opinion|convinced"
    r"|doubt|hope|fear|welcomed?|regret|credo|conviction|glad|worr(y|ied)|trust|proud|sure)",
)


@dataclass(frozen=True)
class ScoredPassage:
    passage: Passage
    score: float


@dataclass(frozen=True)
class SearchResult:
    """Ranked passages plus the evidence the scope gate decides on."""

    passages: list[ScoredPassage]
    coverage: float
    matched_terms: tuple[str, ...]
    query_terms: tuple[str, ...]
    history: tuple[str, ...] = ()
    # The largest share of the question's information that one ranked passage holds.
    passage_coverage: float = 0.0


class Retriever(Protocol):
    def search(self, question: str, history: Sequence[str] = (), k: int = 5) -> SearchResult: ...

    def key_sentences(self, question: str, passage: Passage, limit: int = 2) -> list[str]: ...

    def best_quote(
        self, question: str, passages: Sequence[Passage], context: Sequence[str] = ()
    ) -> tuple[list[Passage], str]: ...


_DEFINED_ACRONYM = re.compile(
    r"((?:[A-Z][\w-]*\s+(?:(?:for|of|and|the|on|in)\s+)*){1,6})\(([A-Z][A-Za-z]{1,7})\)"
)


def defined_acronyms(texts: Sequence[str]) -> dict[str, str]:
    """Acronyms the essay itself defines, e.g. "Partnership for Peace (PfP)" -> PfP: long form.
    The long form is the shortest tail of the capitalised words whose initials spell the acronym."""
    found: dict[str, str] = {}
    for text in texts:
        for long_form, acronym in _DEFINED_ACRONYM.findall(text):
            words = long_form.split()
            capitals = "".join(ch for ch in acronym if ch.isupper())
            initials = ""
            for start in range(len(words) - 1, -1, -1):
                if words[start][0].isupper():
                    initials = words[start][0] + initials
                if initials == capitals:
                    found.setdefault(acronym, " ".join(words[start:]))
                    break
    return found


class BM25Retriever:
    """BM25 over stemmed passages (section heading included), with term coverage for scoping.
    Acronyms the essay defines are indexed and queried with their long form too."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = list(passages)
        self._acronyms = defined_acronyms([p.text for p in self._passages])
        corpus = [self._terms(f"{p.section}. {p.text}") for p in self._passages]
        self._passage_terms = {
            p.id: set(doc) for p, doc in zip(self._passages, corpus, strict=True)
        }
        self._index = bm25s.BM25()
        self._index.index(corpus, show_progress=False)
        document_frequency: Counter[str] = Counter()
        for doc in corpus:
            document_frequency.update(set(doc))
        count = len(corpus)
        self._idf = {
            term: math.log(1 + (count - df + 0.5) / (df + 0.5))
            for term, df in document_frequency.items()
        }
        self._unknown_idf = math.log(1 + (count + 0.5) / 0.5)

    def _terms(self, text: str) -> list[str]:
        expanded = [
            self._acronyms[word]
            for word in re.findall(r"[A-Za-z]+", text)
            if word in self._acronyms
        ]
        return terms(" ".join([text, *expanded]))

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._unknown_idf)

    def _scores(self, query_terms: Sequence[str]) -> np.ndarray:
        known = [t for t in query_terms if t in self._idf]
        if not known:
            return np.zeros(len(self._passages), dtype=np.float32)
        return np.asarray(self._index.get_scores(known), dtype=np.float32)

    def coverage(self, query_terms: Sequence[str]) -> tuple[float, tuple[str, ...]]:
        """Share of the question's information (IDF-weighted) that the essay's vocabulary holds."""
        unique = list(dict.fromkeys(query_terms))
        if not unique:
            return 0.0, ()
        matched = tuple(t for t in unique if t in self._idf)
        total = sum(self.idf(t) for t in unique)
        return sum(self.idf(t) for t in matched) / total, matched

    def search(self, question: str, history: Sequence[str] = (), k: int = 5) -> SearchResult:
        query_terms = self._terms(question)
        scores = self._scores(query_terms)
        for earlier in history[-2:]:
            scores = scores + _HISTORY_WEIGHT * self._scores(self._terms(earlier))
        order = np.argsort(-scores, kind="stable")[:k]
        ranked = [
            ScoredPassage(self._passages[i], float(scores[i])) for i in order if scores[i] > 0
        ]
        coverage, matched = self.coverage(query_terms)
        return SearchResult(
            ranked,
            coverage,
            matched,
            tuple(query_terms),
            tuple(history[-2:]),
            max((self._share_in(query_terms, s.passage) for s in ranked), default=0.0),
        )

    def _share_in(self, query_terms: Sequence[str], passage: Passage) -> float:
        unique = set(query_terms)
        if not unique:
            return 0.0
        held = unique & self._passage_terms[passage.id]
        return sum(self.idf(t) for t in held) / sum(self.idf(t) for t in unique)

    def key_sentences(self, question: str, passage: Passage, limit: int = 2) -> list[str]:
        """The passage's sentences that share the most information with the question, in essay order."""
        wanted = set(terms(question))
        scored = []
        for position, sentence in enumerate(sentences(passage.text)):
            overlap = wanted & set(terms(sentence))
            scored.append((sum(self.idf(t) for t in overlap), position, sentence))
        best = sorted(scored, key=lambda item: (-item[0], item[1]))[:limit]
        best = [item for item in best if item[0] > 0] or best[:1]
        return [sentence for _, _, sentence in sorted(best, key=lambda item: item[1])]

    def _sentence_score(self, wanted: set[str], sentence: str, stance: bool) -> float:
        score = sum(self.idf(t) for t in wanted & set(terms(sentence)))
        if stance and _VOICES_STANCE.search(sentence):
            score += 2 * max(self._idf.values(), default=1.0)
        return score

    def best_quote(
        self, question: str, passages: Sequence[Passage], context: Sequence[str] = ()
    ) -> tuple[list[Passage], str]:
        """The sentence that best answers the question among the top passages, plus the next one
        when it adds a word of the question or both are brief (answers often sit one sentence
        after the match); returns the passages the quote comes from. Earlier questions of the
        conversation (`context`) count a little, on the sentence and the one before it, so a
        follow-up's "him" still finds its subject."""
        wanted = set(terms(question))
        earlier = set(self._terms(" ".join(context))) - wanted
        stance = bool(_ASKS_STANCE.search(question) and _ADDRESSES_PERSONA.search(question))
        best: tuple[float, Passage, list[str], int] | None = None
        for rank, passage in enumerate(passages):
            parts = sentences(passage.text)
            for index, sentence in enumerate(parts):
                score = self._sentence_score(wanted, sentence, stance)
                if earlier:
                    nearby = set(terms(" ".join(parts[max(0, index - 1) : index + 1])))
                    score += _HISTORY_WEIGHT * sum(self.idf(t) for t in earlier & nearby)
                score *= _LOWER_RANK_DISCOUNT**rank
                if best is None or score > best[0]:
                    best = (score, passage, parts, index)
        if best is None:
            raise ValueError("best_quote needs at least one passage")
        _, passage, parts, index = best
        quote, used = parts[index], [passage]
        following = self._next_sentence(passage, parts, index)
        if following:
            follower, owner = following
            adds = (wanted & set(terms(follower))) - set(terms(quote))
            brief = len(quote) < _BRIEF_CHARS and len(follower) < _BRIEF_CHARS
            if (adds or brief) and len(quote) + len(follower) < _QUOTE_CHARS:
                quote = f"{quote} {follower}"
                used += [owner] if owner != passage else []
        return used, quote

    def _next_sentence(
        self, passage: Passage, parts: list[str], index: int
    ) -> tuple[str, Passage] | None:
        """The sentence after `index`, crossing into the next paragraph of the same section."""
        if index + 1 < len(parts):
            return parts[index + 1], passage
        position = self._passages.index(passage)
        if position + 1 < len(self._passages):
            following = self._passages[position + 1]
            if following.section == passage.section:
                return sentences(following.text)[0], following
        return None
