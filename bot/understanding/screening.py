"""Input checks that run before retrieval: clean the text, then spot what must not reach the model."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

# Zero-width, bidi and other format characters hide text from readers but not from the model.
_INVISIBLE_CATEGORIES = {"Cc", "Cf", "Co", "Cs", "Cn"}
_KEEP_CONTROLS = {"\n", "\t"}

_INJECTION = re.compile(
    r"""
    \b(ignore|disregard|forget|override|bypass|drop|abandon)\b[^.?!]{0,40}\b
        (instruction|rule|prompt|persona|guideline|directive|programming|previous|above|prior|system)
  | \b(system|developer|hidden|initial|secret|original)\s+(prompt|instruction|message|rule)s?\b
  | \byour\s+(instructions|rules|prompt|guidelines|programming|configuration)\b
  | \b(reveal|repeat|print|show|output|translate|recite|leak|dump)\b[^.?!]{0,40}\b
        (prompt|instruction|above|system|configuration|everything\ before)
  | (^|\byou\s+(will|must|should|shall)\s+|\bnow\s+)act\s+as\b
  | \b(you\s+are\s+now|from\s+now\s+on|pretend\s+(to\s+be|you|that)|role-?play|roleplay
        |jailbreak|developer\s+mode|\bdan\b|do\s+anything\s+now|simulate|impersonate)\b
  | \b(new|updated)\s+(role|persona|instructions|rules)\b
  | ^\s*(system|assistant|admin|developer)\s*:
  | <\|?(im_start|im_end|system|endoftext)\|?>
  | \[/?(inst|sys)\]
  | \bstay\s+in\s+character\b|\bbreak\s+character\b|\bno\s+longer\s+(bound|kozyrev|andrei)
    """,
    re.IGNORECASE | re.VERBOSE | re.MULTILINE,
)

_IDENTITY = re.compile(
    r"""
    \b(are|r)\s+(you|u|ya)\s+(really\s+|actually\s+|truly\s+|even\s+)?
        (the\s+real|real|human|a\s+human|a\s+person|a\s+real|a\s+bot|a\s+robot|a\s+machine|an?\s+ai
        |an?\s+a\.i\.|a\s+chat\s?bot|a\s+program|a\s+computer|a\s+language\s+model|alive|kozyrev
        |andrei|him|the\s+author|the\s+minister|automated|artificial|sentient|conscious)
  | \bis\s+(this|it|that)\s+(really\s+|actually\s+|truly\s+)?(the\s+real|really|actually|a\s+bot
        |an?\s+ai|a\s+human|a\s+person|a\s+machine|a\s+chat\s?bot|andrei|kozyrev|automated|him)
  | \b(am\s+i|are\s+we)\s+(really\s+|actually\s+)?(talking|speaking|chatting|writing)\s+(to|with)
  | \bwho\s+(are\s+you|am\s+i\s+(talking|speaking|chatting)|is\s+(this|talking|writing|answering))
  | \bwhat\s+are\s+you\b
  | \breal\s+(person|human|andrei|kozyrev)\b
  | \b(yourself|in\s+person)\b[^.?!]{0,30}\b(writ|typ|answer|repl|respond|talk)
  | \b(writ|typ|answer|repl|respond)\w*\b[^.?!]{0,30}\b(yourself|in\s+person)\b
  | \b(kozyrev|andrei)\b[^.?!]{0,40}\bhimself\b|\bhimself\b[^.?!]{0,10}\b(kozyrev|andrei)\b
  | \b(bot|ai|a\.i\.|robot|chatbot|human)\s+or\s+(a\s+)?(human|person|real|bot|ai|machine)
  | \b(are|r)\s+(you|u)\s+(really\s+|actually\s+)?(the\s+|a\s+)?((former|ex-?|russian|real)\s+)*
        (foreign\s+)?(minister|author|writer|diplomat|politician|statesman)\b
  | \b(account|profile|bot|chat)\b[^.?!]{0,25}\b(run|operated|written|managed|controlled)\s+by\s+
        (a\s+)?(human|person|real|bot|ai|machine|kozyrev|andrei|him)
  | \b(kozyrev|andrei|you)\b[^.?!]{0,25}\b(actually|really|personally|truly)\b[^.?!]{0,15}
        \b(writ|wrote|typ|answer|repl|respond|say|said|here|there|behind|online)
  | \b(who|what)\b[^.?!]{0,20}\b(writes|wrote|writing|types|generates|is\s+behind)\b[^.?!]{0,20}
        \b(these|this|the|your)\s+(answers|replies|messages|responses|chat|account|bot)
    """,
    re.IGNORECASE | re.VERBOSE,
)

# A yes/no question about the one answering: who or what it is (a person, a program, the author).
_ASKS_ABOUT_SPEAKER = re.compile(r"^\s*(is|are|am|do|does|did|was|were|can|could|will)\b", re.I)
_SPEAKER = re.compile(
    r"\b(you|your|yourself|this|these|kozyrev|andrei)\b|\b(real|actual|former)\s+(author|minister)\b"
    r"|\ban?\s+(human|person)\b|\b(i|we)\s+(talk|speak|chat|writ)\w*\s+(to|with)\b",
    re.IGNORECASE,
)
_NATURE = re.compile(
    r"\ban?\s+(real\s+|actual\s+|living\s+)?(human|person|robot|bot|chat\s?bot|ai|machine"
    r"|computer|program|language\s+model)\b"
    r"|\b(robot|bot|chat\s?bot|ai|a\.i\.|artificial|automated|generated|gpt|llm|alive|typing|typed)\b"
    r"|\b(the|an?)\s+(real|actual)\s+(one|you|him|author|minister|kozyrev|andrei|conversation)\b"
    r"|\breal(ly)?\s+(you|him|kozyrev|andrei)\b",
    re.IGNORECASE,
)
# Which identity answer fits: an open "who are you?", or a yes/no question whose answer is "No"
# (the real person, a human) or "Yes" (a bot, an AI). Either/or questions get the open answer.
_YES_NO_START = re.compile(
    r"^\W*((so|and|but|hey|ok|okay|well|honestly|seriously|wait)\W+)*"
    r"(is|isn't|are|aren't|am|do|don't|does|doesn't|did|didn't|was|were|can|could|will|would|r)\b",
    re.IGNORECASE,
)
_OPEN_WORD = re.compile(r"\b(who|what|which)\b", re.IGNORECASE)
_PERSON_WORD = re.compile(
    r"\b(human|person|people|real|actual|alive|living|himself|kozyrev|andrei|him|author|minister"
    r"|diplomat|politician|statesman|conscious|sentient)\b",
    re.IGNORECASE,
)
_MACHINE_WORD = re.compile(
    r"\b(bot|robot|chat\s?bot|ai|a\.i\.|machine|program|software|computer|language\s+model"
    r"|automated|artificial|generated|gpt|llm)\b",
    re.IGNORECASE,
)
_GREETING = re.compile(
    r"^\s*(hi|hello|hey|hiya|greetings|good\s+(morning|afternoon|evening)|howdy|yo|thanks|thank\s+you)"
    r"\b[\s!.,]*(there|andrei|kozyrev|mr\.?\s+kozyrev|sir|all|everyone)?[\s!.,:)]*$",
    re.IGNORECASE,
)


class IdentityQuestion(StrEnum):
    """What an identity question asks, so the answer can begin the way the question expects."""

    OPEN = "open"  # who or what is answering: no yes or no
    PERSON = "person"  # is this the real person, a human?: "No."
    MACHINE = "machine"  # is this a bot, an AI?: "Yes."


class Intent(StrEnum):
    QUESTION = "question"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    NOT_TEXT = "not_text"
    INJECTION = "injection"
    IDENTITY = "identity"
    GREETING = "greeting"


@dataclass(frozen=True)
class Screened:
    text: str
    intent: Intent
    stripped_chars: int
    detail: str = ""
    identity: IdentityQuestion | None = None  # set for Intent.IDENTITY


def sanitize(text: str) -> tuple[str, int]:
    """Removes invisible and control characters and collapses whitespace; returns the count removed."""
    normalized = unicodedata.normalize("NFKC", text)
    kept = [
        ch
        for ch in normalized
        if ch in _KEEP_CONTROLS or unicodedata.category(ch) not in _INVISIBLE_CATEGORIES
    ]
    cleaned = re.sub(r"[ \t]+", " ", "".join(kept))
    cleaned = re.sub(r"\s*\n\s*", "\n", cleaned).strip()
    return cleaned, len(normalized) - len(kept)


def _about_the_speaker(text: str) -> re.Match[str] | None:
    """A yes/no question naming the speaker and what kind of thing it might be."""
    for sentence in re.split(r"(?<=[.?!])\s+", text):
        if _ASKS_ABOUT_SPEAKER.match(sentence) and _SPEAKER.search(sentence):
            nature = _NATURE.search(sentence)
            if nature:
                return nature
    return None


def identity_question(text: str, asked: str) -> IdentityQuestion:
    """Classifies the sentence holding `asked` (what the identity check matched)."""
    sentence = next((s for s in re.split(r"(?<=[.?!])\s+", text) if asked in s), asked)
    if not _YES_NO_START.match(sentence) and _OPEN_WORD.search(sentence):
        return IdentityQuestion.OPEN
    machine = _MACHINE_WORD.search(sentence)
    if machine and _PERSON_WORD.search(sentence) and re.search(r"\bor\b", sentence, re.I):
        return IdentityQuestion.OPEN
    return IdentityQuestion.MACHINE if machine else IdentityQuestion.PERSON


def _looks_like_text(text: str) -> bool:
    """Binary garbage decodes to replacement characters and symbols with hardly a letter among them."""
    letters = sum(ch.isalpha() for ch in text)
    return "\ufffd" not in text[:200] and letters >= max(1, len(text) // 5)


def screen(raw: str, max_chars: int) -> Screened:
    """Classifies a user turn; the size check runs first so oversize input costs almost nothing."""
    if len(raw) > max_chars * 4:
        return Screened("", Intent.TOO_LONG, 0, f"{len(raw)} characters received")
    text, stripped = sanitize(raw)
    if not text:
        return Screened(text, Intent.EMPTY, stripped)
    if len(text) > max_chars:
        return Screened("", Intent.TOO_LONG, stripped, f"{len(text)} characters > {max_chars}")
    if not _looks_like_text(text):
        return Screened(text, Intent.NOT_TEXT, stripped)
    injection = _INJECTION.search(text)
    if injection:
        return Screened(text, Intent.INJECTION, stripped, f"marker: {injection.group(0)[:60]!r}")
    identity = _IDENTITY.search(text) or _about_the_speaker(text)
    if identity:
        asked = identity.group(0)
        return Screened(
            text,
            Intent.IDENTITY,
            stripped,
            f"asked: {asked[:60]!r}",
            identity_question(text, asked),
        )
    if _GREETING.match(text):
        return Screened(text, Intent.GREETING, stripped)
    return Screened(text, Intent.QUESTION, stripped)
