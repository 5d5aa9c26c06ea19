"""Finds the essay passages and sentences a question is about, by meaning and by words together.

A sentence encoder finds "let down" where the essay says "betrayed"; BM25 over stemmed words finds
the rare names and numbers an encoder blurs. Each sentence is scored by both, and a passage by its
best sentence and its own vector, so the answer's sentence and its context come out together.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import bm25s
import numpy as np

from bot.knowledge import Passage
from bot.text import clauses, sentences, terms
from bot.understanding.encoder import Encoder
from bot.understanding.vectors import cached_vectors

# How much earlier user turns weigh against the current question when a follow-up is retrieved.
_HISTORY_WEIGHT = 0.35
# ...and all of it when the question names at most this many words of its own ("was that true?").
_BARE_TERMS = 1


@dataclass(frozen=True)
class ScoredPassage:
    passage: Passage
    score: float


@dataclass(frozen=True)
class ScoredSentence:
    """One essay sentence as evidence: where it sits, and how well it matches the question."""

    passage: Passage
    index: int
    text: str
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True)
class SearchResult:
    """Ranked passages and sentences: the evidence answerability decides on."""

    passages: list[ScoredPassage]
    sentences: list[ScoredSentence] = field(default_factory=list)


class Retriever(Protocol):
    """Finds passages and sentences, and walks the essay's sentences around a match."""

    def search(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int = 5,
        shown: frozenset[tuple[str, int]] = frozenset(),
    ) -> SearchResult: ...

    def step(self, passage: Passage, index: int, offset: int) -> tuple[Passage, int] | None: ...

    def following(
        self, passage: Passage, index: int, count: int = 2
    ) -> list[tuple[Passage, int]]: ...

    def sentence(self, passage: Passage, index: int) -> str: ...


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


# Words for the moment of speaking: "NATO today" is not about the 1991 letter's "Today we ask".
_SPEAKING_NOW = frozenset(terms("today now nowadays currently"))


class BM25Retriever:
    """BM25 over stemmed passages (section heading included): the word side of hybrid retrieval.
    Acronyms the essay defines are indexed and queried with their long form too."""

    def __init__(self, passages: Sequence[Passage]) -> None:
        self._passages = list(passages)
        self._acronyms = defined_acronyms([p.text for p in self._passages])
        corpus = [self.terms_of(f"{p.section}. {p.text}") for p in self._passages]
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

    def terms_of(self, text: str) -> list[str]:
        expanded = [
            self._acronyms[word]
            for word in re.findall(r"[A-Za-z]+", text)
            if word in self._acronyms
        ]
        return [t for t in terms(" ".join([text, *expanded])) if t not in _SPEAKING_NOW]

    def idf(self, term: str) -> float:
        return self._idf.get(term, self._unknown_idf)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        known = [t for t in query_terms if t in self._idf]
        if not known:
            return np.zeros(len(self._passages), dtype=np.float32)
        return np.asarray(self._index.get_scores(known), dtype=np.float32)


# Questions (and other texts not in the essay) whose vectors are kept for reuse.
_ASKED_KEPT = 512
# Weights of the fused scores, calibrated on the published dev sets (docs/understanding.md).
_SENTENCE_LEXICAL = 0.25
_SENTENCE_PASSAGE = 0.10
_SENTENCE_BM25 = 0.10
_PASSAGE_BEST_SENTENCE = 0.55
_PASSAGE_DENSE = 0.30
_PASSAGE_BM25 = 0.15
_SENTENCES_KEPT = 12
# A match that needs the previous sentence's words is a little less direct than one that does not.
_CONTEXT_DISCOUNT = 0.03
# In a conversation, what was just shown is rarely asked again, and what follows it often is.
_ALREADY_SHOWN = 0.05
_NEARBY_BONUS = 0.08
_NEARBY_SENTENCES = 4


class HybridRetriever:
    """Dense vectors (passages and sentences) fused with BM25 and IDF-weighted word overlap."""

    def __init__(
        self, passages: Sequence[Passage], encoder: Encoder, cache_dir: Path | None = None
    ) -> None:
        self.encoder = encoder
        self.lexical = BM25Retriever(passages)
        self._passages = list(passages)
        self._position = {p.id: i for i, p in enumerate(self._passages)}
        self._split = [sentences(p.text) for p in self._passages]
        self._sentences = [
            (row, index, text)
            for row, parts in enumerate(self._split)
            for index, text in enumerate(parts)
        ]
        self._sentence_terms = [set(self.lexical.terms_of(text)) for _, _, text in self._sentences]
        texts = [f"{p.section}. {p.text}" for p in self._passages]
        alone = [text for _, _, text in self._sentences]
        # A sentence read with the one before it: "the concept" there is what it is about.
        in_context = [
            f"{self._split[row][index - 1]} {text}"
            if index
            else f"{self._passages[row].section}. {text}"
            for row, index, text in self._sentences
        ]
        # Every clause of the essay too, so that fitting a long answer costs no encoder time.
        clause_texts = sorted(
            {text[a:b].strip() for _, _, text in self._sentences for a, b in clauses(text)}
        )
        vectors = cached_vectors(texts + alone + in_context + clause_texts, encoder, cache_dir)
        count = len(alone)
        self._passage_vectors = vectors[: len(texts)]
        self._sentence_vectors = vectors[len(texts) : len(texts) + count]
        self._context_vectors = vectors[len(texts) + count : len(texts) + 2 * count]
        self._owner = np.array([row for row, _, _ in self._sentences])
        self._sentence_at = {
            (self._passages[row].id, index): n for n, (row, index, _) in enumerate(self._sentences)
        }
        self._known: dict[str, np.ndarray] = dict(
            zip(clause_texts, vectors[len(texts) + 2 * count :], strict=True)
        )
        self._asked: OrderedDict[str, np.ndarray] = OrderedDict()
        self._asked_lock = threading.Lock()

    def embed(self, text: str) -> np.ndarray:
        vector: np.ndarray = self.embed_texts([text])[0]
        return vector

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        """Vectors of the essay's clauses come from the cache; a question asked moments ago
        (retrieval, then fitting its answer) is embedded once."""
        # Many turns run at once (the inference queue's workers): the shared cache is read and
        # trimmed under a lock, and each call keeps the vectors it needs in hand.
        wanted = list(dict.fromkeys(texts))
        held: dict[str, np.ndarray] = {}
        with self._asked_lock:
            for text in wanted:
                vector = self._known.get(text)
                vector = self._asked.get(text) if vector is None else vector
                if vector is not None:
                    held[text] = vector
        missing = [t for t in wanted if t not in held]
        if missing:
            vectors = np.asarray(self.encoder.embed(missing), dtype=np.float32)
            with self._asked_lock:
                for text, vector in zip(missing, vectors, strict=True):
                    held[text] = self._asked[text] = vector
                while len(self._asked) > _ASKED_KEPT:
                    self._asked.popitem(last=False)
        return np.stack([held[t] for t in texts])

    def search(
        self,
        question: str,
        history: Sequence[str] = (),
        k: int = 5,
        shown: frozenset[tuple[str, int]] = frozenset(),
    ) -> SearchResult:
        """`history`: what a follow-up refers back to, which steers it a little. `shown`: the
        sentences the conversation's last answer was made of (passage id, index): a follow-up
        rarely asks for them again, and its answer often comes just after them."""
        query_terms = self.lexical.terms_of(question)
        # "why then?" names nothing of its own: what it refers back to carries it.
        weight = _HISTORY_WEIGHT if len(query_terms) > _BARE_TERMS else 1.0
        query = self.embed(question)
        for earlier in history[-1:]:
            query = query + weight * self.embed(earlier)
        query /= max(float(np.linalg.norm(query)), 1e-9)
        dense_sentence = np.maximum(
            self._sentence_vectors @ query, self._context_vectors @ query - _CONTEXT_DISCOUNT
        )
        dense_passage = self._passage_vectors @ query
        bm25 = self.lexical.scores(query_terms)
        for earlier in history[-1:]:
            bm25 = bm25 + weight * self.lexical.scores(self.lexical.terms_of(earlier))
        bm25_share = bm25 / bm25.max() if bm25.max() > 0 else bm25
        wanted = set(query_terms)
        total = sum(self.lexical.idf(t) for t in wanted) or 1.0
        lexical = np.array(
            [
                sum(self.lexical.idf(t) for t in wanted & held) / total
                for held in self._sentence_terms
            ],
            dtype=np.float32,
        )
        sentence_score = (
            dense_sentence
            + _SENTENCE_LEXICAL * lexical
            + _SENTENCE_PASSAGE * dense_passage[self._owner]
            + _SENTENCE_BM25 * bm25_share[self._owner]
        )
        if shown:
            sentence_score = sentence_score + self._conversation_bias(shown)
        best_in_passage = np.full(len(self._passages), -1.0, dtype=np.float32)
        np.maximum.at(best_in_passage, self._owner, sentence_score)
        passage_score = (
            _PASSAGE_BEST_SENTENCE * best_in_passage
            + _PASSAGE_DENSE * dense_passage
            + _PASSAGE_BM25 * bm25_share
        )
        order = np.argsort(-passage_score, kind="stable")[:k]
        ranked = [ScoredPassage(self._passages[i], float(passage_score[i])) for i in order]
        top = np.argsort(-sentence_score, kind="stable")[:_SENTENCES_KEPT]
        found = []
        for i in top:
            row, index, text = self._sentences[i]
            found.append(
                ScoredSentence(
                    self._passages[row],
                    index,
                    text,
                    float(sentence_score[i]),
                    float(dense_sentence[i]),
                    float(lexical[i]),
                )
            )
        return SearchResult(ranked, found)

    def _conversation_bias(self, shown: frozenset[tuple[str, int]]) -> np.ndarray:
        bias = np.zeros(len(self._sentences), dtype=np.float32)
        for where in shown:
            n = self._sentence_at.get(where)
            if n is None:
                continue
            bias[n] -= _ALREADY_SHOWN
            for after in range(n + 1, min(n + 1 + _NEARBY_SENTENCES, len(self._sentences))):
                row = self._sentences[after][0]
                if self._passages[row].section == self._passages[self._sentences[n][0]].section:
                    bias[after] += _NEARBY_BONUS
        return bias

    def step(self, passage: Passage, index: int, offset: int) -> tuple[Passage, int] | None:
        """The sentence just before (-1) or after (+1) one, across paragraphs of one section."""
        row = self._position[passage.id]
        index += offset
        if 0 <= index < len(self._split[row]):
            return passage, index
        row += offset
        if not 0 <= row < len(self._passages) or self._passages[row].section != passage.section:
            return None
        return self._passages[row], (len(self._split[row]) - 1 if offset < 0 else 0)

    def following(self, passage: Passage, index: int, count: int = 2) -> list[tuple[Passage, int]]:
        """The next `count` sentences in essay order after one sentence ("what happened next")."""
        row = self._position[passage.id]
        out: list[tuple[Passage, int]] = []
        position = index + 1
        while len(out) < count and row < len(self._passages):
            if position < len(self._split[row]):
                out.append((self._passages[row], position))
                position += 1
            else:
                row, position = row + 1, 0
        return out

    def sentence(self, passage: Passage, index: int) -> str:
        return self._split[self._position[passage.id]][index]
