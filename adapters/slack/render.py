"""Reply → Block Kit: escaped so the persona can never ping anyone, split to fit Slack's limits."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from typing import Any

from adapters.links import strip_tracking
from bot.messages import Citation, Reply

Block = dict[str, Any]
Message = dict[str, Any]

SECTION_TEXT_LIMIT = 3000  # a section's text object
CONTEXT_TEXT_LIMIT = 2000  # each context element; kept well under the 3000 text-object cap
FALLBACK_TEXT_LIMIT = 3000  # the notification text; Slack truncates long ones
BLOCKS_PER_MESSAGE = 50
# Broadcast words a client might still highlight; a word joiner after the @ keeps them inert.
_BROADCAST = re.compile(r"@(?=(here|channel|everyone)\b)", re.IGNORECASE)
_WORD_JOINER = "\u2060"


def escape(text: str) -> str:
    """Slack's three control characters, so `<!channel>` or `<@U1>` arrive as plain text;
    links lose their tracking parameters."""
    text = strip_tracking(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BROADCAST.sub("@" + _WORD_JOINER, text)


def split_escaped(text: str, limit: int) -> list[str]:
    """Escapes and cuts at paragraph, line, sentence or word ends, never inside an `&amp;` entity."""
    pieces: list[str] = []
    current = ""
    for token in _tokens(text):
        escaped = escape(token)
        if len(current) + len(escaped) <= limit:
            current += escaped
            continue
        if current.strip():
            pieces.append(current.rstrip())
        current = ""
        while len(escaped) > limit:  # one unbroken run longer than a whole block
            head = _cut_outside_entity(escaped, limit)
            pieces.append(head)
            escaped = escaped[len(head) :]
        current = escaped.lstrip()
    if current.strip():
        pieces.append(current.rstrip())
    return pieces


def _tokens(text: str) -> Iterator[str]:
    """Words with their trailing whitespace, so joining the tokens gives back the text."""
    yield from re.findall(r"\S+\s*|\s+", text)


def _cut_outside_entity(escaped: str, limit: int) -> str:
    head = escaped[:limit]
    amp = head.rfind("&", max(0, limit - 4))
    if amp != -1 and ";" not in head[amp:]:
        head = head[:amp]
    return head


def section(text: str) -> list[Block]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": piece}}
        for piece in split_escaped(text, SECTION_TEXT_LIMIT)
    ]


def context(text: str) -> list[Block]:
    return [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": piece}]}
        for piece in split_escaped(text, CONTEXT_TEXT_LIMIT)
    ]


def citation_blocks(citations: Sequence[Citation]) -> list[Block]:
    """One context block per cited passage: the section name in bold, then the quote."""
    blocks: list[Block] = []
    for number, citation in enumerate(citations, 1):
        label = f"[{number}] {citation.section}"
        header_room = CONTEXT_TEXT_LIMIT - len(escape(label)) - 8
        quote_pieces = split_escaped(f"“{citation.quote}”", max(header_room, 200))
        first, rest = quote_pieces[0], quote_pieces[1:]
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"*{escape(label)}*  {first}"}],
            }
        )
        blocks.extend(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": piece}]} for piece in rest
        )
    return blocks


def fallback_text(text: str) -> str:
    """The plain notification text that accompanies blocks, escaped and clipped."""
    escaped = split_escaped(text, FALLBACK_TEXT_LIMIT - 1)
    if not escaped:
        return " "
    return escaped[0] + ("…" if len(escaped) > 1 else "")


def reply_messages(
    reply: Reply, asked: str | None = None, block_id: str | None = None
) -> list[Message]:
    """The answer as sections, its citations as context blocks, in as many messages as needed.

    `asked` echoes the question above a slash-command answer so the channel sees what was asked;
    `block_id` tags the first answer block so a report can find the exchange without any state.
    """
    blocks: list[Block] = []
    if asked:
        blocks.extend(context(asked))
    answer = section(reply.text.strip() or "…")  # blank text would leave no block to tag
    if block_id:
        answer[0]["block_id"] = block_id
    blocks.extend(answer)
    blocks.extend(citation_blocks(reply.citations))
    return [
        {"text": fallback_text(reply.text or "…"), "blocks": chunk}
        for chunk in _chunks(blocks, BLOCKS_PER_MESSAGE)
    ]


def text_message(text: str, note: str | None = None) -> Message:
    """A short message (help, slow down, a notice) as one section and an optional context note."""
    blocks = section(text)
    if note:
        blocks.extend(context(note))
    return {"text": fallback_text(text), "blocks": blocks[:BLOCKS_PER_MESSAGE]}


def _chunks(blocks: list[Block], size: int) -> list[list[Block]]:
    return [blocks[start : start + size] for start in range(0, len(blocks), size)] or [[]]
