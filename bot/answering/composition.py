"""Composition: the direct answer, made of the essay's own sentences and spoken as the author's words.

The essay is the author's first-person account, so its sentences are already his voice. What a
reply needs is the right ones: the sentence that matches the question, the sentence before it
when that is where its subject is named ("He was accompanied by..."), and the sentence after it
when the answer continues there (a quotation, "Then he signed..."). Replies stay short; the
citation carries the provenance, so no wrapper is repeated on every reply.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

import numpy as np

from bot.knowledge import Passage
from bot.text import clauses
from bot.understanding.answerability import asks_for_a_phrase, missing_answer, years_in
from bot.understanding.retrieval import Retriever, ScoredSentence, SearchResult

# A sentence opening like this leans on the one before it for its subject...
_LEANS_BACK = re.compile(
    r"^[\"“']?(He|She|They|His|Her|Their|Both|Neither|Hence|Therefore"
    r"|(That|This)(\s+is|\s+was|'s|’s)\s+(why|how))\b"
)
# ...and one opening like this on the one before for what it points at, which the answer needs
# only when the question is about that too ("That was good news for Yeltsin, who...").
_POINTS_BACK = re.compile(r"^[\"“']?(It|Its|This|That|These|Those|Such|There)\b")
# A sentence that sets itself against the one before ("In my mind, though, ...") needs it too.
_CONTRASTS = re.compile(r",\s*(though|however|in turn|too|instead)\b")
# ...and a sentence opening like this carries on what the previous one began.
_CARRIES_ON = re.compile(
    r"^[\"“']|^(He|She|It|They|This|That|These|Those|Then|So|Thus|Hence|As a result|In fact"
    r"|Not only|No one|Nobody|Instead|Soon|Later|Eventually|Finally|In the meantime|Meanwhile"
    r"|At that time|At the same time|No|Yes)\b"
)
_OPENING_AND = re.compile(r"^And,?\s+(?=\w)")
# A second question after the first: "..., and who...", "..., or what...", "..., when...".
# (A question that opens with "and what..." is a follow-up, not a second part.)
_MULTI_PART = re.compile(
    r"(?<=\w)(?P<link>,?\s+and|,?\s+or|,)\s+(?:(?:by|to|for|with|from|since|in|of)\s+)?"
    r"(?P<word>what|who|whose|how|why|when|where|was|did|is)\b",
    re.I,
)
_ASKING_WORD = re.compile(
    r"^\W*(what|who|whose|how|why|when|where|which|was|were|did|do|does|is|are|has|had|can)\b", re.I
)
# Sentences in which the author voices his own view, preferred when that is what was asked.
_VOICES_STANCE = re.compile(
    r"\b(I|my|we|our)\b[^.]{0,40}\b(believe|think|thought|feel|felt|heart|mind|view|opinion"
    r"|convinced|doubt|hope|fear|welcomed?|regret|credo|conviction|glad|worr(y|ied)|trust|proud"
    r"|sure|saw|considered)",
)
# A match this close that holds what was asked for (a time, the year named, the author's view)
# beats one that does not.
_CLOSE_MARGIN = 0.12
# A question in two parts takes the runner-up too when it matches nearly as well.
_MULTI_PART_MARGIN = 0.08
# A short answer takes a runner-up this close, while the two stay this short.
_RUNNER_UP_MARGIN = 0.06
_SHORT_WITH_RUNNER_UP = 300
# A neighbour that matches nearly as well as the best match belongs to the answer: the sentence
# before at this share of its score; the sentence after at 0.85, while the two stay this short.
_STRONG_BEFORE = 0.9
_STRONG_AFTER = 0.85
_SHORT_WITH_NEXT = 250
# A sentence that points back, or carries on past this length, joins only when it matches at
# this share of the best match's score: otherwise it is context the question did not ask for.
_RELEVANT_BEFORE = 0.6
_SHORT_WITH_CARRIED = 300
_RELEVANT_CARRIED = 0.6
# A follow-up's answer may start from a sentence the conversation has not shown yet this close.
_FRESH_MARGIN = 0.05
MAX_REPLY_CHARS = 400
# An answer to "how many", "when", "where"... longer than this keeps only the clauses that hold
# it and the run around them within the shorter room.
_LONG_FACT = 250
_FACT_ROOM = 200


class QuestionKind(StrEnum):
    FACT = "fact"
    REASON = "reason"
    STANCE = "stance"
    ABOUT = "about"


_REASON = re.compile(r"^\s*(why|how come|for what reason)\b|\bwhy\b", re.IGNORECASE)
_STANCE = re.compile(
    r"\b(you|your)\b[^?]{0,50}\b(think|thought|feel|felt|view|opinion|believe|make of|see|hope"
    r"|fear|regret|grade|judge|rate|consider|picture|take on)\b|\bin your (view|opinion|eyes)\b"
    r"|\b(delusional|wrong|right|mistake|fault)\b",
    re.IGNORECASE,
)
_ABOUT = re.compile(r"^\s*(tell me (about|more)|what about|talk about|describe|explain)\b", re.I)


def question_kind(question: str) -> QuestionKind:
    if _ABOUT.search(question):
        return QuestionKind.ABOUT
    if _STANCE.search(question):
        return QuestionKind.STANCE
    if _REASON.search(question):
        return QuestionKind.REASON
    return QuestionKind.FACT


@dataclass(frozen=True)
class Span:
    """Consecutive or separate essay sentences that make the direct answer, in essay order."""

    parts: tuple[tuple[Passage, int, str], ...]

    @property
    def text(self) -> str:
        return " ".join(text for _, _, text in self.parts)

    @property
    def passages(self) -> list[Passage]:
        seen: list[Passage] = []
        for passage, _, _ in self.parts:
            if passage not in seen:
                seen.append(passage)
        return seen


def select_span(
    question: str,
    search: SearchResult,
    retriever: Retriever,
    embed: Callable[[Sequence[str]], np.ndarray],
    after: tuple[Passage, int] | None = None,
    shown: frozenset[tuple[str, int]] = frozenset(),
    room: int = MAX_REPLY_CHARS,
) -> Span:
    """The sentences that answer, fitted to the reply's length (`_fit`).
    `after`: continue the essay from this sentence instead ("what happened next"). `shown`: the
    sentences (passage id, index) a follow-up's conversation has already been answered with.
    `room`: the characters the sentences may take (the reply's framing takes the rest)."""
    if after is not None:
        following = retriever.following(after[0], after[1], count=2)
        parts = [(p, i, retriever.sentence(p, i)) for p, i in following]
        return Span(tuple(_fit(question, parts, embed, room)))
    found = _unshown_first(search.sentences, shown)
    anchor = _anchor(question, found)
    parts = [(anchor.passage, anchor.index, anchor.text)]
    located = retriever.step(anchor.passage, anchor.index, -1)
    before = _score_of(found, located) if located else 0.0
    if located and (
        _LEANS_BACK.match(anchor.text)
        or (_POINTS_BACK.match(anchor.text) and before >= _RELEVANT_BEFORE * anchor.score)
        or _CONTRASTS.search(anchor.text[:40])
        or before >= _STRONG_BEFORE * anchor.score
    ):
        parts.insert(0, (located[0], located[1], retriever.sentence(*located)))
    located = retriever.step(anchor.passage, anchor.index, +1)
    if located:
        follower = retriever.sentence(*located)
        score = _score_of(found, located)
        strong = score >= _STRONG_AFTER * anchor.score
        asks = anchor.text.rstrip("\"'” ").endswith(("?", ":"))
        # A quotation the best match opens and does not close goes on in the next sentence.
        quoting = anchor.text.count('"') % 2 == 1 or anchor.text.count("“") > anchor.text.count("”")
        together = sum(len(t) + 1 for _, _, t in parts) + len(follower)
        short = together <= _SHORT_WITH_NEXT
        carries_on = _CARRIES_ON.match(follower) and (
            together <= _SHORT_WITH_CARRIED
            or follower.startswith(('"', "“"))
            or score >= _RELEVANT_CARRIED * anchor.score
        )
        # A follower that only announces what comes next ("This is how he describes it:")
        # would leave the reply hanging.
        announces = follower.rstrip("\"'” ").endswith(":")
        if (carries_on or asks or quoting or (strong and short)) and not announces:
            parts.append((located[0], located[1], follower))
    two_parts = asks_two_things(question)
    if two_parts and len(found) > 1:
        second = found[1] if found[0] is anchor else found[0]
        taken = {(p, i) for p, i, _ in parts}
        if (
            second.score >= anchor.score - _MULTI_PART_MARGIN
            and (second.passage, second.index) not in taken
        ):
            parts.append((second.passage, second.index, second.text))
    _add_runner_up(found, anchor, parts)
    order = {p.id: p.start for p, _, _ in parts}
    parts.sort(key=lambda part: (order[part[0].id], part[1]))
    fitted = _fit(question, parts, embed, room)
    long = sum(len(t) + 1 for _, _, t in fitted) > _LONG_FACT
    if long and asks_for_a_phrase(question) and not two_parts:
        # "How many…?", "when…?": lead with the clauses that hold it, not the whole sentence.
        fitted = (
            _fit(
                question, parts, embed, _FACT_ROOM, lambda said: not missing_answer(question, said)
            )
            or fitted
        )
    return Span(tuple(_opening(_without_headless_context(fitted, anchor))))


def _without_headless_context(
    parts: list[tuple[Passage, int, str]], anchor: ScoredSentence
) -> list[tuple[Passage, int, str]]:
    """A sentence before the best match is there for the subject it names at its start; cut at
    its start to fit, it no longer names it and only takes room."""
    if len(parts) < 2 or not parts[0][2].startswith("…"):
        return parts
    first, second = parts[0], parts[1]
    is_before = first[0] == anchor.passage and first[1] == anchor.index - 1
    if is_before and (second[0], second[1]) == (anchor.passage, anchor.index):
        return parts[1:]
    return parts


def _opening(parts: list[tuple[Passage, int, str]]) -> list[tuple[Passage, int, str]]:
    """A reply does not open with "And": that links to a sentence the reader was not shown."""
    if not parts or not (joined := _OPENING_AND.match(parts[0][2])):
        return parts
    passage, index, text = parts[0]
    rest = text[joined.end() :]
    return [(passage, index, rest[:1].upper() + rest[1:]), *parts[1:]]


def asks_two_things(question: str) -> bool:
    """A question such as "when did he go, and who came after?" asks two things; "did it stop, or
    is it still going?" offers two answers to one; in "once he saw it, what did he do?" the comma
    only ends a clause."""
    for link in _MULTI_PART.finditer(question):
        joined_by = link["link"].strip(" ,").lower()
        if joined_by == "or" and not link["word"].lower().startswith("wh"):
            continue
        if not joined_by and not _ASKING_WORD.match(question[: link.start()]):
            continue
        return True
    return False


def _add_runner_up(
    found: Sequence[ScoredSentence],
    anchor: ScoredSentence,
    parts: list[tuple[Passage, int, str]],
) -> None:
    """A short answer takes the next best match too when it is nearly as good: the best match
    often introduces what the runner-up states."""
    used = sum(len(t) + 1 for _, _, t in parts)
    shown = {(p, i) for p, i, _ in parts}
    for sentence in found[:3]:
        if (sentence.passage, sentence.index) in shown:
            continue
        close = sentence.score >= anchor.score - _RUNNER_UP_MARGIN
        if close and used + len(sentence.text) <= _SHORT_WITH_RUNNER_UP:
            parts.append((sentence.passage, sentence.index, sentence.text))
        return


def _unshown_first(
    found: Sequence[ScoredSentence], shown: frozenset[tuple[str, int]]
) -> list[ScoredSentence]:
    """A follow-up asks for something new: what the conversation was already told gives way to
    a close match it was not."""
    fresh = [s for s in found if (s.passage.id, s.index) not in shown]
    if not fresh or fresh[0] is found[0] or fresh[0].score < found[0].score - _FRESH_MARGIN:
        return list(found)
    return [fresh[0], *[s for s in found if s is not fresh[0]]]


def _anchor(question: str, found: Sequence[ScoredSentence]) -> ScoredSentence:
    """The best match, unless it lacks what the question looks for and a close match has it: the
    kind of answer asked for ("when" -> a time), the year the question names ("why did he flip
    in December 1994?" -> not the December 1991 letter), the author's own stated view."""
    best = found[0]
    years = years_in(question)
    wants: list[Callable[[str], bool]] = [lambda text: not missing_answer(question, text)]
    if years:
        wants.append(lambda text: bool(years & years_in(text)))
    if question_kind(question) is QuestionKind.STANCE:
        wants.append(lambda text: bool(_VOICES_STANCE.search(text)))
    for wanted in wants:
        if not wanted(best.text):
            closest = _close_match(found, wanted)
            if closest is not None:
                return closest
    return best


def _close_match(
    found: Sequence[ScoredSentence], wanted: Callable[[str], bool]
) -> ScoredSentence | None:
    """The first of the next matches within the margin of the best that `wanted` takes."""
    for sentence in found[1:6]:
        if sentence.score < found[0].score - _CLOSE_MARGIN:
            return None
        if wanted(sentence.text):
            return sentence
    return None


def _score_of(found: Sequence[ScoredSentence], where: tuple[Passage, int]) -> float:
    for sentence in found:
        if (sentence.passage, sentence.index) == where:
            return sentence.score
    return 0.0


def _fit(
    question: str,
    parts: list[tuple[Passage, int, str]],
    embed: Callable[[Sequence[str]], np.ndarray],
    room: int,
    holds: Callable[[str], bool] | None = None,
) -> list[tuple[Passage, int, str]]:
    """Keeps the run of consecutive clauses that fits `room` (and `holds` what was asked, when
    given: then even a reply that fits is cut to it) and is closest to the question in sum; a
    sentence cut at either end is marked with an ellipsis, so what is left stays verbatim and
    reads as one stretch of the essay rather than scattered pieces. Empty: no run holds it."""
    if holds is None and sum(len(t) + 1 for _, _, t in parts) <= room:
        return parts
    units = [(k, span) for k, (_, _, text) in enumerate(parts) for span in clauses(text)]
    texts = [parts[k][2][a:b].strip() for k, (a, b) in units]
    vectors = embed([question, *texts])
    relevance = vectors[1:] @ vectors[0]
    accept = (lambda a, b: holds(" ".join(texts[a : b + 1]))) if holds else (lambda a, b: True)
    chosen = _best_window([len(t) + 2 for t in texts], relevance, room, accept)
    if not chosen:
        return []
    fitted = []
    for k, (passage, index, sentence) in enumerate(parts):
        own = [u for u, (owner, _) in enumerate(units) if owner == k]
        kept = [u for u in own if u in chosen]
        if not kept:
            continue
        text = sentence[units[kept[0]][1][0] : units[kept[-1]][1][1]].strip()
        # Only an end that was cut loses its comma or colon to the ellipsis.
        if kept[0] != own[0]:
            text = f"…{text.lstrip(' ,;:—')}"
        if kept[-1] != own[-1]:
            text = f"{text.rstrip(' ,;:—')}…"
        fitted.append((passage, index, text))
    return fitted


def _best_window(
    costs: list[int],
    relevance: np.ndarray,
    room: int,
    accept: Callable[[int, int], bool],
) -> set[int]:
    """The indices of the consecutive units within `room` whose relevance adds up to most, of the
    runs `accept` takes (first and last index); empty when it takes none."""
    best: tuple[float, int, int] | None = None
    for start in range(len(costs)):
        used = 0
        total = 0.0
        for end in range(start, len(costs)):
            used += costs[end]
            if used > room:
                break
            total += float(relevance[end])
            if (best is None or total > best[0]) and accept(start, end):
                best = (total, start, end)
    return set(range(best[1], best[2] + 1)) if best else set()
