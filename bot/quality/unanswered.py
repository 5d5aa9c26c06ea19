"""What people ask that the essay does not say: declined and "not directly answered" questions,
grouped by meaning so the essay's owner reads a short list of topics rather than every message.

The grouping takes any `embed` callable that maps texts to L2-normalised rows (the sentence
encoder in production, a fake in tests), so it knows nothing of the model behind it.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from bot.messages import ReplyKind
from bot.storage import ExchangeFilter, LogView
from bot.storage.view import REDACTED

Embed = Callable[[Sequence[str]], np.ndarray]
# Cosine similarity at which two questions count as asking the same thing. With all-MiniLM-L6-v2,
# three topics asked three ways each scored 0.63-0.92 within a topic, and at most 0.53 across
# topics and against six unrelated questions (tests/web/test_unanswered.py keeps that check).
DEFAULT_THRESHOLD = 0.55
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class Asked:
    """One unanswered question, as logged."""

    exchange_id: str
    text: str
    kind: str
    created: datetime
    tenant: str = ""
    platform: str = ""


@dataclass
class QuestionGroup:
    """Questions that mean the same thing; `examples` are ordered most typical first."""

    label: str
    examples: list[Asked] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.examples)

    @property
    def first_seen(self) -> datetime:
        return min(asked.created for asked in self.examples)

    @property
    def last_seen(self) -> datetime:
        return max(asked.created for asked in self.examples)

    @property
    def kinds(self) -> dict[str, int]:
        counted: dict[str, int] = {}
        for asked in self.examples:
            counted[asked.kind] = counted.get(asked.kind, 0) + 1
        return counted


def normalise(text: str) -> str:
    """The form questions are compared in: NFKC, case-folded, single-spaced."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def group_questions(
    questions: Sequence[Asked], embed: Embed, threshold: float = DEFAULT_THRESHOLD
) -> list[QuestionGroup]:
    """Groups `questions` by meaning, largest group first.

    Identical texts (after `normalise`) are embedded once. Texts are then taken densest first
    (the ones with most near neighbours start groups), and each joins the group whose centroid it
    is most similar to when that similarity reaches `threshold`; otherwise it starts a new group.
    Deterministic for a given input and embedding.
    """
    if not 0 < threshold <= 1:
        raise ValueError(f"threshold must be in (0, 1], not {threshold}")
    by_text: dict[str, list[Asked]] = {}
    for asked in questions:
        key = normalise(asked.text)
        if key:
            by_text.setdefault(key, []).append(asked)
    if not by_text:
        return []
    texts = list(by_text)
    vectors = np.asarray(embed(texts), dtype=np.float32)
    if vectors.shape[0] != len(texts):
        raise ValueError(f"embed returned {vectors.shape[0]} rows for {len(texts)} texts")
    weights = np.array([len(by_text[t]) for t in texts], dtype=np.float32)
    similar = vectors @ vectors.T
    density = ((similar >= threshold) * weights[None, :]).sum(axis=1)
    order = sorted(range(len(texts)), key=lambda i: (-density[i], -weights[i], texts[i]))

    sums: list[np.ndarray] = []
    members: list[list[int]] = []
    for index in order:
        vector = vectors[index]
        best, best_score = -1, threshold
        for group, total in enumerate(sums):
            centroid = total / (np.linalg.norm(total) or 1.0)
            score = float(centroid @ vector)
            if score >= best_score:
                best, best_score = group, score
        if best < 0:
            sums.append(vector * weights[index])
            members.append([index])
        else:
            sums[best] = sums[best] + vector * weights[index]
            members[best].append(index)

    groups = []
    for total, indices in zip(sums, members, strict=True):
        centroid = total / (np.linalg.norm(total) or 1.0)
        typical = sorted(indices, key=lambda i: (-float(centroid @ vectors[i]), texts[i]))
        examples = [
            asked
            for i in typical
            for asked in sorted(by_text[texts[i]], key=lambda a: a.created, reverse=True)
        ]
        groups.append(QuestionGroup(label=by_text[texts[typical[0]]][0].text, examples=examples))
    groups.sort(key=lambda g: (-g.count, -g.last_seen.timestamp(), g.label))
    return groups


def group_record(number: int, group: QuestionGroup) -> dict[str, object]:
    """One group as the JSON exports write it."""
    return {
        "group": number,
        "count": group.count,
        "label": group.label,
        "kinds": group.kinds,
        "first_seen": group.first_seen.isoformat(),
        "last_seen": group.last_seen.isoformat(),
        "questions": [
            {
                "exchange_id": asked.exchange_id,
                "text": asked.text,
                "kind": asked.kind,
                "created": asked.created.isoformat(),
                "tenant": asked.tenant,
            }
            for asked in group.examples
        ],
    }


UNANSWERED_KINDS = (ReplyKind.OUT_OF_SCOPE.value, ReplyKind.NOT_DIRECT.value)
# Enough for months of a busy server; grouping n questions costs an n x n similarity matrix.
MAX_QUESTIONS = 2000
_PAGE = 500


def unanswered_questions(
    view: LogView,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = MAX_QUESTIONS,
) -> list[Asked]:
    """The newest `limit` questions the persona declined as outside the essay or could not
    answer directly, in the view's tenants; redacted ones are left out."""
    found: list[Asked] = []
    for kind in UNANSWERED_KINDS:
        offset = 0
        while len(found) < limit:
            page = view.list_exchanges(
                ExchangeFilter(kind=kind, since=since, until=until, limit=_PAGE, offset=offset)
            )
            found.extend(
                Asked(x.id, x.input_text, x.kind, x.created, x.tenant, x.platform)
                for x in page.items
                if x.input_text != REDACTED
            )
            offset += _PAGE
            if offset >= page.total:
                break
    found.sort(key=lambda asked: asked.created, reverse=True)
    return found[:limit]


class LazyEncoder:
    """The bundled sentence encoder, loaded on first use rather than when the dashboard starts
    (most sessions never need it), remembering each text's vector so that reloading the
    Unanswered page embeds only questions it has not seen."""

    def __init__(self, load: Callable[[], Embed] | None = None, remember: int = 20_000) -> None:
        self._load = load or _bundled_encoder
        self._embed: Embed | None = None
        self._known: dict[str, np.ndarray] = {}
        self._remember = remember
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            if self._embed is None:
                self._embed = self._load()
            new = [text for text in dict.fromkeys(texts) if text not in self._known]
            if new:
                for text, row in zip(new, np.asarray(self._embed(new)), strict=True):
                    self._known[text] = row
            if not texts:
                return np.zeros((0, 0), dtype=np.float32)
            rows = np.stack([self._known[text] for text in texts])
            while len(self._known) > self._remember:  # the oldest go first: dicts keep order
                del self._known[next(iter(self._known))]
            return rows


def _bundled_encoder() -> Embed:
    from bot.understanding.encoder import MiniLMEncoder

    return MiniLMEncoder().embed
