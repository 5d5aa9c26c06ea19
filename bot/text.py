"""Text primitives shared by retrieval and grounding: one tokenizer, one sentence splitter."""

from __future__ import annotations

import itertools
import re
import unicodedata
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_EN

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_DASHES = str.maketrans({"\u2013": "-", "\u2014": "-", "\u2212": "-"})
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})
# Words that carry no topic in a question put to the persona ("what did you think about ...").
_CONVERSATIONAL = frozenset(
    [
        "i",
        "me",
        "my",
        "mine",
        "myself",
        "we",
        "us",
        "our",
        "ours",
        "you",
        "your",
        "yours",
        "yourself",
        "he",
        "him",
        "his",
        "she",
        "her",
        "hers",
        "they",
        "them",
        "their",
        "it",
        "its",
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "why",
        "how",
        "when",
        "where",
        "did",
        "do",
        "does",
        "done",
        "doing",
        "was",
        "were",
        "is",
        "are",
        "am",
        "be",
        "been",
        "being",
        "have",
        "has",
        "had",
        "would",
        "could",
        "should",
        "can",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "tell",
        "say",
        "said",
        "says",
        "think",
        "thought",
        "know",
        "knew",
        "please",
        "explain",
        "describe",
        "mean",
        "meant",
        "about",
        "like",
        "just",
        "really",
        "also",
        "any",
        "anything",
        "something",
        "some",
        "there",
        "here",
        "then",
        "than",
        "that",
        "this",
        "these",
        "those",
        "one",
        "ones",
        "get",
        "got",
        "let",
        "lets",
        "us",
        "thing",
        "things",
        "way",
        "much",
        "many",
        "more",
        "most",
        "very",
        "so",
        "s",
        "t",
        "don",
        "didn",
        "doesn",
        "isn",
        "wasn",
    ]
)
# Function words and pronouns: they say how a question is put, not what it is about.
_FUNCTION_WORDS = frozenset(
    """
    everyone everybody anyone anybody someone somebody everything nothing nobody a about above
    after again against all an and any as at because before below between both but by down during
    each few for from further if in into no nor not of off on once only or other out over own same
    such the through to too under until up while with within without write wrote written happen
    happened happens going go went come came
    """.split()
)
STOPWORDS = frozenset(STOPWORDS_EN) | _CONVERSATIONAL | _FUNCTION_WORDS
_ABBREVIATION = re.compile(r"(?:^|[\s(\"'])(?:(?:[A-Z]\.)*[A-Z]|Mr|Mrs|Ms|Dr|St|Gen|Sen|Rep)$")
_ADVERB = re.compile(
    r"^(?:[a-z]{3,}(?:ally|ently|antly|ously|ively|ately|edly|ingly|fully|lessly|ctly|stly)"
    r"|[a-z]{4,}ily)$"
)
# A quotation whose rest is this short stays in one sentence ("Genialno! Zdorovo!").
_SHORT_QUOTE_TAIL = 40
_SENTENCE_BREAK = re.compile(r"[.!?\u2026][\"')\]]*\s+")
_CLAUSE = re.compile(r"(?<=[,;:])\s+|\s+(?=—)|(?<=—)")
# A clause shorter than this joins its neighbour: too short to carry a thought on its own.
_SHORT_CLAUSE, _SHORTEST_CLAUSE = 40, 25


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def normalize(text: str) -> str:
    """The comparison form: NFKC, ASCII quotes and dashes, collapsed whitespace, lower case."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).translate(_DASHES)
    return re.sub(r"\s+", " ", text).strip().lower()


def words(text: str) -> list[str]:
    return [w.removesuffix("'s") for w in _WORD.findall(normalize(text))]


def terms(text: str) -> list[str]:
    """Stemmed content words: the unit both retrieval and the grounding check count. Adverbs
    ("eventually", "exactly") say how, not what, so they are left out like function words."""
    content = [w for w in words(text) if w not in STOPWORDS and len(w) > 1 and not _ADVERB.match(w)]
    return list(_stemmer().stemWords(content))


def sentences(text: str) -> list[str]:
    """Splits prose into sentences without breaking on initials such as "U.S." or "H.W."."""
    parts: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(text):
        end = match.end()
        following = text[end : end + 1]
        before = text[start : match.start()]
        if not (following.isupper() or following in "\"'"):
            continue
        if text[match.start()] == "." and _ABBREVIATION.search(before[-12:]):
            continue
        if _inside_short_aside(text[: match.start()], text, end):
            continue
        parts.append(text[start:end].strip())
        start = end
    tail = text[start:].strip()
    if tail:
        parts.append(tail)
    return parts


def _inside_short_aside(before: str, text: str, end: int) -> bool:
    """A break inside parentheses, or inside a quotation that closes a few words later, does not
    end the sentence: "he intoned, "Genialno! Zdorovo!" (Brilliant! Terrific!)." is one.
    `before`: the text up to the break, `end`: where the next sentence would start."""
    if before.count("(") > before.count(")"):
        return True
    if before.count('"') % 2 == 0 and before.count("“") <= before.count("”"):
        return False
    closing = min((i for i in (text.find('"', end), text.find("”", end)) if i >= 0), default=-1)
    return 0 <= closing - end <= _SHORT_QUOTE_TAIL


def clauses(sentence: str) -> list[tuple[int, int]]:
    """A sentence's clauses as (start, end) offsets, none shorter than a few words (a short one
    joins its neighbour), so that kept neighbours are sliced from the sentence verbatim."""
    cuts = [0, *(m.end() for m in _CLAUSE.finditer(sentence)), len(sentence)]
    pieces = [(a, b) for a, b in itertools.pairwise(cuts) if sentence[a:b].strip()]
    merged: list[tuple[int, int]] = []
    for start, end in pieces:
        if merged and (
            merged[-1][1] - merged[-1][0] < _SHORT_CLAUSE or end - start < _SHORTEST_CLAUSE
        ):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged or [(0, len(sentence))]
