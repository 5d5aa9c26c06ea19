"""Removes e-mail addresses, phone numbers and secrets from text before it is stored anywhere,
cuts oversize texts, and finds a text again in another whatever its spacing or Unicode form
(what a moderator's redaction and a user's erasure scrub from other rows)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

from bot.messages import Exchange, Verdict

# Each kind is replaced by a marker that says what was there, so a moderator still reads the gist.
# Letters and digits of any script: josé@correo.es and 用户@例子.中国 are addresses too.
# A match starts only where a run of address characters starts, so a long run is scanned once.
EMAIL = re.compile(
    r"(?<![\w!#$%&'*+/=?^`{|}~.-])[\w!#$%&'*+/=?^`{|}~.-]+@(?:[^\W_][\w-]*\.)+[^\W_][\w-]*[^\W_]"
)
# 9 to 15 digits with optional separators: long enough to spare years and year ranges (1993-1997).
PHONE = re.compile(r"(?<![\w+])\+?\d(?:[\s().-]{0,2}\d){8,14}(?!\w)")
SECRET = re.compile(
    "|".join(
        [
            r"\bxox[abposr]-[A-Za-z0-9-]{10,}",  # Slack tokens
            r"\bxapp-[A-Za-z0-9-]{10,}",  # Slack app-level tokens
            r"\b[MNO][A-Za-z0-9_-]{23,27}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,}",  # Discord bot tokens
            r"\bgh[pousr]_[A-Za-z0-9]{30,}",  # GitHub tokens
            r"\bsk-[A-Za-z0-9_-]{20,}",  # OpenAI-style API keys
            r"\bAKIA[0-9A-Z]{16}\b",  # AWS access key ids
            r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",  # JWTs
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)",
            r"(?i:\bbearer)\s+[A-Za-z0-9._~+/=-]{12,}",
            r"(?i:\b(?:password|passwd|pwd|secret|token|api[_-]?key))\b\s*[:=]\s*\S+",
        ]
    )
)
KINDS = {"email": EMAIL, "phone": PHONE, "secret": SECRET}
_WORD = re.compile(r"\w+")
_CLAUSE = re.compile(r"[.,;:!?\n]+")
TRUNCATED = "… [truncated {} characters]"
# What a scrubbed fragment of someone's text reads afterwards.
SCRUBBED = "[redacted]"


class Redactor:
    """Applies the built-in kinds (e-mail, phone, secret) and any extra patterns from settings."""

    def __init__(self, kinds: Iterable[str] = KINDS, extra_patterns: Iterable[str] = ()) -> None:
        # Secrets first: a token may contain something that looks like a phone number.
        order = ["secret", "email", "phone"]
        self._rules = [(f"[{kind} redacted]", KINDS[kind]) for kind in order if kind in set(kinds)]
        self._rules += [("[redacted]", re.compile(p)) for p in extra_patterns]

    def text(self, value: str) -> str:
        for marker, pattern in self._rules:
            value = pattern.sub(marker, value)
        return value

    def found(self, value: str) -> list[str]:
        """What `text` would remove from `value`."""
        spans = []
        for _marker, pattern in self._rules:
            spans += [match.group() for match in pattern.finditer(value)]
            value = pattern.sub(" ", value)
        return spans

    def exchange(self, exchange: Exchange) -> Exchange:
        """A copy whose user-supplied and user-derived texts are redacted, verdict details too:
        they may list the question's words, fragments of a removed address among them."""
        copy = exchange.model_copy(deep=True)
        message = copy.message
        removed = self.found(message.text) + self.found(message.raw_text or "")
        message.text = self.text(message.text)
        if message.raw_text is not None:
            message.raw_text = self.text(message.raw_text)
        message.user_name = self.text(message.user_name)
        copy.reply.text = self.text(copy.reply.text)
        copy.trace.prompt = self.text(copy.trace.prompt)
        copy.reply.moderation = [
            v.model_copy(update={"detail": scrub_words(self.text(v.detail), removed)})
            for v in copy.reply.moderation
        ]
        return copy


def _folded(text: str) -> tuple[str, list[int]]:
    """`text` compatibility-decomposed, case-folded and with runs of whitespace as one space,
    and for each character of that the index of the original character it came from."""
    out: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        for part in unicodedata.normalize("NFKD", char).casefold():
            if unicodedata.combining(part):
                continue
            space = part.isspace()
            if space and (not out or out[-1] == " "):
                continue
            out.append(" " if space else part)
            origin.append(index)
    return "".join(out), origin


def scrub(
    text: str, needles: Iterable[str], marker: str = SCRUBBED, whole_words: bool = False
) -> str:
    """`text` with every occurrence of each needle replaced by `marker`, matched regardless of
    spacing, case, accents and Unicode form (full-width letters, ligatures); with `whole_words`
    only where no letter or digit adjoins it (an id inside a longer word is another id)."""
    haystack, origin = _folded(text)
    spans: list[tuple[int, int]] = []
    for needle in needles:
        folded = _folded(needle)[0].strip()
        if len(folded) < 2:
            continue
        start = haystack.find(folded)
        while start >= 0:
            end = start + len(folded)
            inside = whole_words and (
                (start > 0 and haystack[start - 1].isalnum())
                or (end < len(haystack) and haystack[end].isalnum())
            )
            if not inside:
                spans.append((origin[start], origin[end - 1] + 1))
            start = haystack.find(folded, end if not inside else start + 1)
    if not spans:
        return text
    pieces, last = [], 0
    for start, end in sorted(spans):
        if start < last:  # overlaps the span before: one marker for both
            last = max(last, end)
            continue
        pieces += [text[last:start], marker]
        last = end
    return "".join(pieces) + text[last:]


def fragments(texts: Iterable[str]) -> list[str]:
    """The texts, and their lines, sentences and clauses of two words or more: what a later
    prompt or a report may quote of them (memory often keeps only part of a question)."""
    found: set[str] = set()
    for text in texts:
        found.add(text.strip())
        for piece in _CLAUSE.split(text):
            if len(piece.split()) >= 2:
                found.add(piece.strip())
    return sorted((f for f in found if f), key=len, reverse=True)


def scrub_words(detail: str, removed: Sequence[str]) -> str:
    """Replaces each word of `detail` that is a piece (or the stem) of a word in `removed`: the
    scope check lists a question's unknown words, stemmed, and must not keep a removed phone
    number or address alive that way."""
    words = {_folded(w)[0] for text in removed for w in _WORD.findall(text)}
    if not words:
        return detail

    def replace(match: re.Match[str]) -> str:
        folded = _folded(match.group())[0]
        if folded in words or (len(folded) >= 3 and any(folded in word for word in words)):
            return SCRUBBED
        return match.group()

    return _WORD.sub(replace, detail)


def scrub_verdicts(
    verdicts: Sequence[dict[str, object]], removed: Sequence[str]
) -> list[dict[str, object]]:
    """Stored verdicts (JSON) with the words of `removed` scrubbed from their details."""
    return [
        {**v, "detail": scrub(scrub_words(str(v.get("detail", "")), removed), removed)}
        for v in verdicts
    ]


def clip(text: str, limit: int) -> str:
    """At most about `limit` characters, saying how many were cut."""
    if len(text) <= limit:
        return text
    return text[:limit] + TRUNCATED.format(len(text) - limit)


def clip_exchange(exchange: Exchange, limit: int) -> Exchange:
    """A copy fit for storage: oversize texts cut (the rendered prompt may be four times as
    long), ids and names cut to their columns' widths."""
    copy = exchange.model_copy(deep=True)
    message = copy.message
    message.text = clip(message.text, limit)
    if message.raw_text is not None:
        message.raw_text = clip(message.raw_text, limit)
    message.user_name = message.user_name[:256]
    message.user_id = message.user_id[:128]
    message.channel = message.channel[:256]
    message.thread = message.thread[:256] if message.thread else message.thread
    copy.reply.text = clip(copy.reply.text, limit)
    copy.trace.prompt = clip(copy.trace.prompt, 4 * limit)
    copy.reply.moderation = [
        Verdict(check=v.check[:64], passed=v.passed, detail=clip(v.detail, 1000))
        for v in copy.reply.moderation
    ]
    return copy
