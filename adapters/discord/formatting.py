"""Reply → Discord text: answer and cited passages, mentions defused, split into valid messages."""

from __future__ import annotations

import re

from discord.utils import escape_markdown

from adapters.links import strip_tracking
from bot.messages import Reply

MESSAGE_LIMIT = 2000
SOURCES = "**Sources**"
# @everyone, @here, users <@1> / <@!1> and roles <@&1>: a zero-width space after "@" stops the ping
# even if allowed_mentions were ever lost, and shows the text as written.
_MENTION = re.compile(r"@(everyone|here)|<@([!&]?\d+)>")
_SENTENCE_END = re.compile(r"[.!?…][\"”’')\]]*\s")
_CITATION_HEADING = re.compile(r"\d+\. \*\*")


def neutralise_mentions(text: str) -> str:
    return _MENTION.sub(lambda m: m.group(0).replace("@", "@\u200b", 1), text)


def render_text(text: str) -> str:
    """Answer text as Discord shows it: markdown escaped, links previewless, pings defused."""
    return neutralise_mentions(_safe(text.strip()))


def render_reply(reply: Reply) -> str:
    """The answer, then each cited passage as a bold section name over a block-quoted quote."""
    parts = [_safe(reply.text.strip())]
    if reply.citations:
        sources = [SOURCES]
        for number, citation in enumerate(reply.citations, 1):
            sources.append(f"{number}. **{_safe(' '.join(citation.section.split()))}**")
            sources.extend(f"> {_safe(line)}" for line in citation.quote.splitlines())
        parts.append("\n".join(sources))
    return neutralise_mentions("\n\n".join(part for part in parts if part))


def _safe(text: str) -> str:
    """Markdown escaped, links without tracking and in `<…>` so Discord shows no preview."""
    return escape_markdown(strip_tracking(text, ("<", ">")))


def split_message(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Chunks of at most `limit` characters that keep each citation (heading and quote) whole.

    The text is cut into blocks (answer paragraphs; "Sources" glued to the first citation; each
    citation with its quote lines), packed greedily; only a block longer than a message is cut
    inside, at a line, sentence or word end, and a quote cut in two stays a quote.
    """
    chunks: list[str] = []
    current = ""
    for separator, block in _blocks(text.strip()):
        joined = f"{current}{separator}{block}" if current else block
        if len(joined) <= limit:
            current = joined
            continue
        if len(block) > limit:  # cut anyway: fill what is left of this message first
            pieces = _cut_block(joined, limit)
        else:
            if current:
                chunks.append(current)
            pieces = [block]
        chunks.extend(pieces[:-1])
        current = pieces[-1]
    if current:
        chunks.append(current)
    return chunks


def _blocks(text: str) -> list[tuple[str, str]]:
    """(separator before, block) pairs: paragraphs, and citations with their quote lines."""
    blocks: list[tuple[str, str]] = []
    for number, paragraph in enumerate(re.split(r"\n{2,}", text)):
        lines = paragraph.split("\n")
        current: list[str] = []
        separator = "\n\n" if number else ""
        for line in lines:
            starts_citation = bool(_CITATION_HEADING.match(line))
            if starts_citation and current and current != [SOURCES]:
                blocks.append((separator, "\n".join(current)))
                current, separator = [], "\n"
            current.append(line)
        if current:
            blocks.append((separator, "\n".join(current)))
    return [(sep, block.strip()) for sep, block in blocks if block.strip()]


def _cut_block(block: str, limit: int) -> list[str]:
    """A block too long for one message, cut at the best boundaries within the limit."""
    chunks: list[str] = []
    rest = block.strip()
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
    return chunks or [""]


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
