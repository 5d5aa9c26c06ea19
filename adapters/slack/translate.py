"""Slack payloads → IncomingMessage: Slack's markup turned back into the words a reader sees.

The core reads plain text: user mentions become the person's name (the bot's own mention and
names not known go), channel mentions `#name`, links their label (a bare link goes), broadcast
mentions and mrkdwn emphasis go. The text exactly as Slack sent it stays in `raw_text`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from bot.messages import IncomingMessage

PLATFORM = "slack"
_MARKUP = re.compile(r"<([^<>]*)>")
_USER_MENTION = re.compile(r"<@([A-Z0-9]+)(?:\|[^<>]*)?>")
# mrkdwn emphasis: *bold*, _italic_, ~strike~ and `code` markers at a word's edge, ``` fences.
_FENCE = re.compile(r"```")
_EMPHASIS = re.compile(r"(?<![\w*_~`])[*_~`]+(?=\S)|(?<=\S)[*_~`]+(?![\w*_~`])")
_QUOTE = re.compile(r"^(?:&gt;|>)+ ?", re.MULTILINE)
_BARE_URL = re.compile(r"\b(?:https?|ftp|mailto):\S+", re.IGNORECASE)


def mentioned_users(text: str) -> list[str]:
    """The user ids mentioned in Slack text, in order, each once."""
    return list(dict.fromkeys(_USER_MENTION.findall(text)))


def plain_text(
    text: str, bot_user_id: str | None = None, names: Mapping[str, str] | None = None
) -> str:
    """The words a reader sees in Slack text, without markup; see the module docstring."""
    known = names or {}

    def readable(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            user = target[1:]
            return "" if user == bot_user_id else known.get(user, label)
        if target.startswith("#"):
            return f"#{label}" if label else ""
        if target.startswith("!"):  # @here, @channel, user groups, dates: not words to retrieve
            return label if target.startswith("!date") else ""
        return label  # a link: its label, or nothing for a bare one

    readable_text = _QUOTE.sub("", _FENCE.sub(" ", text))
    readable_text = _MARKUP.sub(readable, readable_text)
    readable_text = _EMPHASIS.sub("", _BARE_URL.sub("", readable_text))
    readable_text = readable_text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"\s+", " ", readable_text).strip()


def event_time(event: Mapping[str, Any]) -> datetime:
    """When Slack says the message was sent (its ts); now when the payload has none."""
    try:
        return datetime.fromtimestamp(float(str(event.get("ts"))), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return datetime.now(UTC)


def from_event(
    event: Mapping[str, Any],
    team_id: str,
    user_name: str,
    bot_user_id: str | None,
    names: Mapping[str, str] | None = None,
) -> IncomingMessage:
    """A message or app_mention event; the conversation is the thread the reply lands in."""
    raw = str(event.get("text") or "")
    return IncomingMessage(
        text=plain_text(raw, bot_user_id, names),
        raw_text=raw,
        platform=PLATFORM,
        tenant=team_id,
        channel=str(event.get("channel") or ""),
        thread=thread_of(event),
        user_id=str(event.get("user") or ""),
        user_name=user_name,
        received_at=event_time(event),
    )


def from_command(command: Mapping[str, Any]) -> IncomingMessage:
    """A slash command: no thread, so /ask questions in one channel share one conversation."""
    raw = str(command.get("text") or "")
    return IncomingMessage(
        text=plain_text(raw),
        raw_text=raw,
        platform=PLATFORM,
        tenant=str(command.get("team_id") or ""),
        channel=str(command.get("channel_id") or ""),
        thread="",
        user_id=str(command.get("user_id") or ""),
        user_name=str(command.get("user_name") or command.get("user_id") or ""),
    )


def thread_of(event: Mapping[str, Any]) -> str:
    """A thread's ts; a new message starts the thread its answer opens, so its own ts. That holds
    in DMs too: in Slack's agent experience each message typed in the app's Messages tab is the
    root of a thread, and the answer (and any follow-up) belongs in it."""
    return str(event.get("thread_ts") or event.get("ts") or "")
