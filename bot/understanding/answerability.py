"""Answerability: does the essay answer what was asked, not merely use the question's words?

Three outcomes, decided before any model call:
- answer: a sentence of the essay matches the question's meaning closely enough, and it holds the
  kind of thing asked for (a number for "how many", a time for "when", a succession for "who took
  over from", a win or loss for "who won", the attribute in "what is the capital of");
- not directly: the essay speaks near the question but not to it — the reply says so and cites the
  closest passage (a refusal in the log);
- decline: the essay is about something else.

The signals are general: semantic similarity fused with word overlap (retrieval), specifics the
question names that the essay never does (a year, a month, a capitalised name), questions about
the present that a 1990s memoir cannot answer, and the kind of answer a question asks for.
Thresholds are calibrated on the published dev sets; docs/understanding.md explains them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from bot.text import terms
from bot.understanding.chat_text import Vocabulary
from bot.understanding.retrieval import SearchResult

# Fused sentence score (dense cosine + word overlap + passage context) at or above which the essay
# answers, and below which it is about something else; in between it is "not directly".
ANSWER_AT = 0.66
CLOSEST_AT = 0.50

_PRESENT = re.compile(
    r"\b(today|right now|currently|nowadays|these days|at the moment|at present|this year"
    r"|as of now|still in office|latest|current|currently|presently|any more|anymore)\b"
    r"|\bnow\W*$",  # "…in Poland now?"
    re.IGNORECASE,
)
_ASKS_VIEW = re.compile(
    r"\b(you|your)\b[^?]{0,40}\b(view|see|think|opinion|feel|make of|believe|consider|say|take on)\b"
    r"|\bin your (view|opinion|eyes)\b",
    re.IGNORECASE,
)
_ASKS_QUANTITY = re.compile(
    r"\b(how (many|much|long|old|often|far|tall|big|large|high|heavy|wide|deep)|by how much"
    r"|what (percentage|share|number|proportion))\b",
    re.IGNORECASE,
)
_ASKS_TIME = re.compile(
    r"(^|[,;]\s*|\b(and|so|but)\s+)(when|what year|which year|what date|since when)\b",
    re.IGNORECASE,
)
_NUMBER = re.compile(
    r"\b(?!(?:1[89]|20)\d\d\b)(\d[\d,.]*|two|three|four|five|six|seven|eight|nine|ten|eleven"
    r"|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty"
    r"|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|dozen|half"
    r"|percent|once|twice|decades?|years?)\b|%",
    re.IGNORECASE,
)
# A time an answer can give: a year, a month, a season, or a time said relative to another
# ("the next morning", "two years later"); a bare "when" or "then" names none.
_TIME = re.compile(
    r"\b(1[89]\d\d|20\d\d|January|February|March|April|May|June|July|August|September|October"
    r"|November|December|spring|summer|autumn|winter"
    r"|(the )?(next|following|previous|same) (day|morning|evening|night|week|month|year)"
    r"|(days?|weeks?|months?|years?|decades?) (later|earlier|before|after|ago)"
    r"|at (dawn|night|midnight)|that (day|night|morning|year))\b",
    re.IGNORECASE,
)
# Who came after whom: the answer must say so of a person the question names.
_ASKS_SUCCESSOR = re.compile(
    r"\b(successors?|succeeded|took over from|take over from|taken over from|came after|come after"
    r"|replaced|replacement)\b",
    re.IGNORECASE,
)
# (A change "from" one thing "to" another replaces it: "changing the formula from … to …".)
_SUCCESSION = re.compile(
    r"\b(succe(ssor|eded|eding|ssion)|replac(ed|ing|ement)|took over|taken over|in (his|her|my) place"
    r"|chang(e|ed|es|ing)\b[^.]{0,80}\bfrom\b[^.]{0,160}\bto\b)",
    re.IGNORECASE,
)
# Who won a contest: the answer must tell a win or a loss, not only that there was a contest.
_ASKS_OUTCOME = re.compile(
    r"\b(beat|beaten|defeat(ed)?|won|win|wins|winner|lost to|who lost)\b", re.IGNORECASE
)
_OUTCOME = re.compile(
    r"\b(beat|beaten|defeat\w*|won|wins?|winning|victor\w*|lost|los(e|ing))\b", re.I
)
# "What is the capital of Poland?": a question for an attribute of the kind reference books
# give must be answered by a text that speaks of that attribute, not only of Poland. (Abstract
# nouns, "the reaction of", "the point of", are left alone: an answer paraphrases them.)
_ASKS_ATTRIBUTE = re.compile(
    r"\b(?:what|who|which)(?:'s|\s+is|\s+was|\s+are|\s+were)\s+the\s+((?:[a-z]+\s+){0,2}[a-z]+)"
    r"\s+of\b",
    re.I,
)
_REFERENCE_ATTRIBUTES = frozenset(
    "capital population currency language languages religion area size age height birthplace"
    " founder president leader head king queen chancellor mayor governor anthem flag"
    " secretary general minister".split()
)
# "What is the Nonproliferation Treaty?" asks what it is: a sentence that only mentions it does not
# say. (The past tense, "what was the PfP?", asks about its part in the story, and is left alone.)
_ASKS_DEFINITION = re.compile(
    r"^\W*what(?:'s|\s+is|\s+are)\s+(?:the\s+|an?\s+)?(?P<thing>(?!(?:your|my|his|her|their|it|this|that)\b)"
    r"[A-Za-z][\w'-]*(?:\s+[\w'-]+){0,4}?)\s*\?*\s*$",
    re.I,
)
# "What is the Russian saying about misfortune?" asks about something the essay relates, not a term.
_RELATION = re.compile(
    r"\b(of|about|for|in|on|with|to|from|between|during|after|before|like)\b", re.I
)
# "Where ...?" asks for a place: a name after "in", "at", "from"...
_ASKS_PLACE = re.compile(r"^\s*where\b|[,;]\s*where\b|\band where\b", re.IGNORECASE)
# ("in the West" names a camp, not a place: "where is NATO's headquarters?" is not answered by it.)
_PLACE = re.compile(
    r"\b(in|at|from|to|near|outside|across)\s+(?!the\s+(West|East)\b)(the\s+)?[A-Z][a-z]+"
)
# "What does NATO stand for?" asks for a long form the essay gives only in "... (PfP)".
_ASKS_LONG_FORM = re.compile(r"\bwhat (?:does|did|do) ([A-Za-z]{2,8}) stand for\b", re.I)
_YEAR = re.compile(r"\b(1[89]\d\d|20\d\d)\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
# A capital that starts a sentence (or follows a quote or colon) says nothing about a name.
_MID_SENTENCE_CAPITAL = re.compile(r"(?<![.!?:\"“(]\s)(?<!^)\b[A-Z][a-z]+(?:[A-Z][a-z]+)?\b")


@dataclass(frozen=True)
class _AnswerKind:
    """A kind of answer a question asks for, and the sign that a text holds one."""

    label: str
    asked: re.Pattern[str]
    held: re.Pattern[str]
    of_named: bool = False  # it must be said of someone the question names
    # A number, a time or a place is said in a few words; who succeeded or won needs the sentence.
    in_a_phrase: bool = False


_ANSWER_KINDS = (
    _AnswerKind("a quantity", _ASKS_QUANTITY, _NUMBER, in_a_phrase=True),
    _AnswerKind("a time", _ASKS_TIME, _TIME, in_a_phrase=True),
    _AnswerKind("a successor", _ASKS_SUCCESSOR, _SUCCESSION, of_named=True),
    _AnswerKind("who won", _ASKS_OUTCOME, _OUTCOME),
    _AnswerKind("a place", _ASKS_PLACE, _PLACE, in_a_phrase=True),
)


def years_in(text: str) -> set[str]:
    return set(_YEAR.findall(text))


def asks_for_a_phrase(question: str) -> bool:
    """Whether the question asks for a number, a time or a place: an answer a clause can hold."""
    return any(k.in_a_phrase and k.asked.search(question.strip()) for k in _ANSWER_KINDS)


def missing_answer(question: str, said: str) -> str | None:
    """What the question asks for ("a time", "a successor") that `said` does not hold."""
    asked = question.strip()
    named = [n for n in _MID_SENTENCE_CAPITAL.findall(asked) if not _MONTH.fullmatch(n)]
    for kind in _ANSWER_KINDS:
        if not kind.asked.search(asked):
            continue
        if not kind.held.search(said):
            return kind.label
        if kind.of_named and named and not any(name in said for name in named):
            return kind.label
    attribute = _ASKS_ATTRIBUTE.search(asked)
    phrase = attribute.group(1).lower() if attribute else ""
    looked_up = bool(phrase) and phrase.split()[-1] in _REFERENCE_ATTRIBUTES
    if looked_up and not set(terms(phrase)) <= set(terms(said)):
        return f"its {phrase}"
    defined = _ASKS_DEFINITION.match(asked)
    term = defined["thing"] if defined and not _RELATION.search(defined["thing"]) else ""
    if term and not _defines(term, said):
        return "what it is"
    acronym = _ASKS_LONG_FORM.search(asked)
    if acronym and not re.search(rf"\({re.escape(acronym.group(1))}\)", said, re.IGNORECASE):
        return "what it stands for"
    return None


def _defines(thing: str, said: str) -> bool:
    """Whether `said` says what `thing` is: "X is/was/remains…", "X, a…", "called X", "X (…)"."""
    name = re.escape(thing.strip())
    return bool(
        re.search(
            rf"\b{name}\b[\"”']?(,\s+(a|an|the)\b|\s+(is|was|are|were|remains|means|meant|refers"
            rf"|stands)\b|\s*\()|\b(called|named|known as)\s+(the\s+)?\"?{name}\b|\({name}\)",
            said,
            re.IGNORECASE,
        )
    )


class Outcome(StrEnum):
    ANSWER = "answer"
    NOT_DIRECT = "not_direct"
    DECLINE = "decline"


@dataclass(frozen=True)
class Answerability:
    outcome: Outcome
    reason: str
    score: float


class AnswerabilityJudge:
    """Decides the outcome from the retrieval's evidence and what the question names."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        essay_terms: frozenset[str],
        answer_at: float = ANSWER_AT,
        closest_at: float = CLOSEST_AT,
    ) -> None:
        self._vocabulary = vocabulary
        self._essay_terms = essay_terms
        self._essay_months = frozenset(
            m for m in _MONTH.findall(" ".join(vocabulary.cased.values()))
        )
        self.answer_at = answer_at
        self.closest_at = closest_at

    def foreign_specifics(self, question: str) -> list[str]:
        """Years, months and names the question gives that the essay never mentions: the question
        is about an event or a person outside it."""
        found = [y for y in _YEAR.findall(question) if y not in self._vocabulary.years]
        found += [m for m in _MONTH.findall(question) if m not in self._essay_months]
        for name in _MID_SENTENCE_CAPITAL.findall(question):
            if name in found or _MONTH.fullmatch(name):
                continue
            if not set(terms(name)) <= self._essay_terms:
                found.append(name)
        return found

    def decide(
        self, question: str, search: SearchResult, said: str, about_last: bool = False
    ) -> Answerability:
        """`said`: the text the answer would be made of (the best match and its neighbours).
        `about_last`: a follow-up whose best match is the answer it follows ("who gave it?"
        after the Cold Peace): being short, it scores low, yet that answer holds what it asks."""
        if not search.sentences:
            return Answerability(Outcome.DECLINE, "nothing retrieved", 0.0)
        best = search.sentences[0]
        score = best.score
        detail = f"score {score:.2f} (dense {best.dense:.2f}, words {best.lexical:.2f})"
        if score < self.closest_at:
            return Answerability(Outcome.DECLINE, detail, score)
        foreign = self.foreign_specifics(question)
        if foreign:
            return Answerability(
                Outcome.NOT_DIRECT,
                f"{detail}; the essay never mentions {len(foreign)} of its specifics",
                score,
            )
        if _PRESENT.search(question) and not _ASKS_VIEW.search(question):
            return Answerability(Outcome.NOT_DIRECT, f"{detail}; asks about the present", score)
        missing = missing_answer(question, said)
        if missing:
            return Answerability(Outcome.NOT_DIRECT, f"{detail}; asks for {missing}", score)
        if score < (self.closest_at if about_last else self.answer_at):
            return Answerability(Outcome.NOT_DIRECT, detail, score)
        return Answerability(Outcome.ANSWER, detail, score)
