"""People's typing, made comparable with the essay: chat spellings, lowercase names, short years.

What a user types ("wat did u think of pfp in dec 93??") and what the essay says ("Partnership for
Peace", "December 1993") should meet on the same words. Everything here is derived from the
essay itself (its names, acronyms and years) or from general English chat conventions; nothing
is keyed to particular questions.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

# General chat spellings and contractions people use, mapped to the words they stand for.
_CHAT = {
    "u": "you",
    "ya": "you",
    "yu": "you",
    "ur": "your",
    "urs": "yours",
    "r": "are",
    "wat": "what",
    "wut": "what",
    "wht": "what",
    "y": "why",
    "bc": "because",
    "cuz": "because",
    "coz": "because",
    "b4": "before",
    "pls": "please",
    "plz": "please",
    "thx": "thanks",
    "abt": "about",
    "bout": "about",
    "w/": "with",
    "w/o": "without",
    "ppl": "people",
    "govt": "government",
    "gov": "government",
    "dont": "don't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "wasnt": "wasn't",
    "werent": "weren't",
    "isnt": "isn't",
    "im": "I'm",
    "ive": "I've",
    "whats": "what's",
    "hows": "how's",
    "whos": "who's",
    "tho": "though",
    "thru": "through",
    "gonna": "going to",
    "wanna": "want to",
    "gotta": "got to",
    "kinda": "kind of",
    "sorta": "sort of",
    "idk": "I do not know",
    "imo": "in my opinion",
    "rn": "right now",
    "prez": "president",
    "pres": "president",
    "1st": "first",
    "2nd": "second",
}
# Chat filler that carries no question ("lol", "pls") once the spelling is expanded.
_FILLER = frozenset(
    ["lol", "lmao", "haha", "hehe", "omg", "ok", "okay", "hmm", "btw", "tbh", "ngl"]
)
_MONTHS = {
    "jan": "January",
    "feb": "February",
    "mar": "March",
    "apr": "April",
    "jun": "June",
    "jul": "July",
    "aug": "August",
    "sep": "September",
    "sept": "September",
    "oct": "October",
    "nov": "November",
    "dec": "December",
}
# How often a surname must stand alone for a first name to be taken as that person's.
_SURNAME_ALONE = 2
_ROMAN = {"1": "I", "2": "II", "3": "III", "4": "IV", "5": "V"}
_URL = re.compile(r"(?:https?://|www\.)\S+", re.IGNORECASE)
# Emoji, symbols and runs of punctuation say how someone feels, not what they ask.
_SYMBOLS = re.compile(r"[^\w\s'’\"“”.,;:?!()\-–—%$&/]")
_PUNCTUATION_RUN = re.compile(r"([?!.,])[?!.,]+")


@dataclass(frozen=True)
class Vocabulary:
    """What the essay names, in its own spelling: names, acronyms and the years it mentions."""

    cased: dict[str, str]
    years: frozenset[str]
    # A first name the essay gives with one surname only ("Boris" -> "Boris Yeltsin").
    full_names: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, source: Iterable[str]) -> Vocabulary:
        texts = list(source)
        cased: dict[str, str] = {}
        years: set[str] = set()
        lower_seen: set[str] = set()
        for text in texts:
            # A capital after a sentence break says nothing about whether the word is a name.
            for match in re.finditer(r"(?<![.!?:\"“]\s)(?<!^)\b[A-Za-z][A-Za-z-]*", text):
                word = match.group(0)
                if word[0].isupper() or any(ch.isupper() for ch in word[1:]):
                    cased.setdefault(word.lower(), word)
                else:
                    lower_seen.add(word.lower())
            years.update(re.findall(r"\b(1[89]\d\d|20\d\d)\b", text))
        # A word the essay also writes in lower case ("allies", "peace") is not a name to restore.
        names = {low: word for low, word in cased.items() if low not in lower_seen and len(low) > 1}
        surnames: dict[str, set[str]] = {}
        for text in texts:
            for first, last in re.findall(r"\b([A-Z][a-z]+) ([A-Z][a-z]{2,})\b", text):
                if first.lower() in names and last.lower() in names:
                    surnames.setdefault(first, set()).add(last)
        joined = " ".join(texts)

        def person(first: str, last: str) -> bool:
            """A person is called by surname alone again and again ("Yeltsin"); the second word
            of a compound name ("Union", "Curtain") seldom stands alone."""
            before = re.findall(rf"(\S+)\s+{last}\b", joined)
            return sum(not word[:1].isupper() for word in before) >= _SURNAME_ALONE

        full = {
            first.lower(): f"{first} {last}"
            for first, lasts in surnames.items()
            if len(lasts) == 1 and person(first, last := next(iter(lasts)))
        }
        return cls(names, frozenset(years), full)


def _year(two_digits: str, years: frozenset[str]) -> str | None:
    for century in ("19", "20"):
        if century + two_digits in years:
            return century + two_digits
    return None


_WORD = re.compile(r"(?<![\w'’])'?[A-Za-z0-9]+(?:/o?)?(?![\w])")


def normalize_typing(text: str, vocabulary: Vocabulary) -> str:
    """Rewrites chat typing into the essay's spelling; the meaning of the question is unchanged."""
    text = _URL.sub(" ", text)
    text = _SYMBOLS.sub(" ", text)
    text = _PUNCTUATION_RUN.sub(r"\1", text)

    def rewrite(match: re.Match[str]) -> str:
        token = match.group(0)
        low = token.lower()
        after = text[match.end() : match.end() + 4]
        before = text[max(0, match.start() - 12) : match.start()].rstrip()
        previous = before.split()[-1] if before.split() else ""
        if low in _FILLER:
            return ""
        if low in _CHAT and not token.isupper():
            return _CHAT[low]
        if low in _MONTHS and re.match(r"\s*'?\d", after):
            return _MONTHS[low]
        if re.fullmatch(r"'?\d\d", low) and (year := _year(low.lstrip("'"), vocabulary.years)):
            return year
        named = vocabulary.cased.get(previous.lower(), previous)
        if low in _ROMAN and named.isupper() and len(named) > 1:
            return _ROMAN[low]
        following = text[match.end() : match.end() + 20].split()
        if low in vocabulary.full_names and not (
            following and following[0].strip(",.?!").lower() in vocabulary.cased
        ):
            return vocabulary.full_names[low]
        if low in vocabulary.cased and (token.islower() or token.isupper()):
            return vocabulary.cased[low]
        return token

    rewritten = _WORD.sub(rewrite, text)
    return re.sub(r"\s+", " ", rewritten).strip()
