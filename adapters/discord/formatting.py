"""Reply → Discord text: answer and cited passages, mentions defused, split into valid messages."""

from __future__ import annotations

import re

from discord.utils import escape_markdown

from adapters.links import strip_tracking
from bot.messages import Reply

MESSAGE_LIMIT = 2000
# @everyone, @here, users <@1> / <@!1> and roles <@&1>: a zero-width space after "@" stops the ping
# even if allowed_mentions were ever lost, and shows the text as written.
_MENTION = re.compile(r"@(everyone|here)|<@([!&]?\d+)>")
_SENTENCE_END = re.compile(r"[.!?…][\"”’')\]]*\s")


def neutralise_mentions(text: str) -> str:
    return _MENTION.sub(lambda m: m.group(0).replace("@", "@\u200b", 1), text)


def render_reply(reply: Reply) -> str:
    """The answer, then each cited passage as a bold section name over a block-quoted quote."""
    parts = [_safe(reply.text.strip())]
    if reply.citations:
        sources = ["**Sources**"]
        for number, citation in enumerate(reply.citations, 1):
            sources.append(f"{number}. **{_safe(' '.join(citation.section.split()))}**")
            sources.extend(f"> {_safe(line)}" for line in citation.quote.splitlines())
        parts.append("\n".join(sources))
    return neutralise_mentions("\n\n".join(part for part in parts if part))


def _safe(text: str) -> str:
    """Markdown escaped, links without tracking and in `<…>` so Discord shows no preview."""
    return escape_markdown(strip_tracking(text, ("<", ">")))


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters, cut at a paragraph, line, sentence or word boundary."""
    chunks: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if head:
            chunks.append(head)
        # A quote line cut in two stays a quote in the next message.
        last_line = head.rsplit("\n", 1)[-1]
        if last_line.startswith("> ") and rest and not rest.startswith(("> ", "\n")):
            rest = "> " + rest
    if rest:
        chunks.append(rest)
    return chunks


def _cut_point(text: str, limit: int) -> int:
    """The latest good boundary within `limit`, preferring coarse ones unless they waste half."""
    window = text[: limit + 1]
    candidates = [
        window.rfind("\n\n"),
        window.rfind("\n"),
        max((m.end() - 1 for m in _SENTENCE_END.finditer(window)), default=-1),
        window.rfind(" "),
    ]
    for position in candidates:
        if position >= limit // 2:
            return position
    for position in candidates:
        if position > 0:
            return position
    return limit
