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
STREAM_TEXT_LIMIT = 12_000  # markdown_text of chat.appendStream
ANSWER_BLOCK_PREFIX = "persona-answer:"
FEEDBACK_BLOCK_PREFIX = "persona-feedback:"
FEEDBACK_ACTION = "persona_feedback"
GOOD, BAD = "good", "bad"
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


def asked_block(who: str, question: str) -> Block:
    """The question echoed above a public `/ask` answer: verbatim (Slack links and formats
    nothing in it), on one line (no quote or list markup), escaped like every other text."""
    line = " ".join(f"{who} asked: {question}".split())
    piece = split_escaped(line, CONTEXT_TEXT_LIMIT - 1)[0] if line else "…"
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": piece, "verbatim": True}]}


def disclosure_block(text: str) -> Block:
    """The plain AI disclosure every answer carries, as Slack's guidelines for AI apps ask."""
    element = {"type": "plain_text", "text": text[:CONTEXT_TEXT_LIMIT], "emoji": False}
    return {"type": "context", "elements": [element]}


def feedback_block(exchange_id: str) -> Block:
    """Thumbs up and down under an answer; the block id names the exchange, so a vote needs no
    state in this process (any worker, any restart can record it)."""
    return {
        "type": "context_actions",
        "block_id": FEEDBACK_BLOCK_PREFIX + exchange_id,
        "elements": [
            {
                "type": "feedback_buttons",
                "action_id": FEEDBACK_ACTION,
                "positive_button": {
                    "text": {"type": "plain_text", "text": "Good answer"},
                    "accessibility_label": "Mark this answer as good",
                    "value": GOOD,
                },
                "negative_button": {
                    "text": {"type": "plain_text", "text": "Bad answer"},
                    "accessibility_label": "Mark this answer as bad",
                    "value": BAD,
                },
            }
        ],
    }


def closing_blocks(
    reply: Reply, exchange_id: str | None = None, disclosure: str | None = None
) -> list[Block]:
    """What follows an answer's text: its citations, the disclosure, the feedback buttons."""
    blocks = citation_blocks(reply.citations)
    if disclosure:
        blocks.append(disclosure_block(disclosure))
    if exchange_id:
        blocks.append(feedback_block(exchange_id))
    return blocks


def stream_text(text: str) -> str:
    """A piece of a streamed answer (markdown_text): escaped like blocks, within its limit."""
    return _cut_outside_entity(escape(text), STREAM_TEXT_LIMIT)


def reply_messages(
    reply: Reply,
    asked: Block | None = None,
    exchange_id: str | None = None,
    disclosure: str | None = None,
) -> list[Message]:
    """The answer as sections, then its closing blocks, in as many messages as needed.

    `asked` (see `asked_block`) goes above a slash-command answer so the channel sees what was
    asked; `exchange_id` tags the first answer block (so a report can find the exchange without
    any state) and adds the feedback buttons to the last message.
    """
    blocks: list[Block] = [asked] if asked else []
    answer = section(reply.text.strip() or "…")  # blank text would leave no block to tag
    if exchange_id:
        answer[0]["block_id"] = ANSWER_BLOCK_PREFIX + exchange_id
    blocks.extend(answer)
    blocks.extend(closing_blocks(reply, exchange_id, disclosure))
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
