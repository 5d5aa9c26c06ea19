"""Removes e-mail addresses, phone numbers and secrets from text before it is stored anywhere."""

from __future__ import annotations

import re
from collections.abc import Iterable

from bot.messages import Exchange

# Each kind is replaced by a marker that says what was there, so a moderator still reads the gist.
EMAIL = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9-]{2,}"
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

    def exchange(self, exchange: Exchange) -> Exchange:
        """A copy whose user-supplied and user-derived texts are redacted."""
        copy = exchange.model_copy(deep=True)
        copy.message.text = self.text(copy.message.text)
        if copy.message.raw_text is not None:
            copy.message.raw_text = self.text(copy.message.raw_text)
        copy.message.user_name = self.text(copy.message.user_name)
        copy.reply.text = self.text(copy.reply.text)
        copy.trace.prompt = self.text(copy.trace.prompt)
        return copy
