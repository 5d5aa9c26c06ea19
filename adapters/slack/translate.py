"""Slack payloads → IncomingMessage: Slack's markup turned back into the words the user typed."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.messages import IncomingMessage

PLATFORM = "slack"
_MARKUP = re.compile(r"<([^<>]*)>")


def plain_text(text: str, bot_user_id: str | None = None) -> str:
    """Drops the mention of the bot, shows other markup as readable text and unescapes entities."""

    def readable(match: re.Match[str]) -> str:
        inner = match.group(1)
        target, _, label = inner.partition("|")
        if target.startswith("@"):
            return "" if target[1:] == bot_user_id else f"@{label or target[1:]}"
        if target.startswith("#"):
            return f"#{label or target[1:]}"
        if target.startswith("!"):
            return f"@{label or target[1:].split('^')[0]}"
        return label or target

    readable_text = _MARKUP.sub(readable, text)
    readable_text = readable_text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return re.sub(r"[ \t]+", " ", readable_text).strip()


def from_event(
    event: Mapping[str, Any], team_id: str, user_name: str, bot_user_id: str | None
) -> IncomingMessage:
    """A message or app_mention event; a reply always lands in the event's thread."""
    return IncomingMessage(
        text=plain_text(str(event.get("text") or ""), bot_user_id),
        platform=PLATFORM,
        tenant=team_id,
        channel=str(event.get("channel") or ""),
        thread=thread_of(event),
        user_id=str(event.get("user") or ""),
        user_name=user_name,
    )


def from_command(command: Mapping[str, Any]) -> IncomingMessage:
    """A slash command: no thread, so one user's /ask questions in a channel share memory."""
    return IncomingMessage(
        text=plain_text(str(command.get("text") or "")),
        platform=PLATFORM,
        tenant=str(command.get("team_id") or ""),
        channel=str(command.get("channel_id") or ""),
        thread=None,
        user_id=str(command.get("user_id") or ""),
        user_name=str(command.get("user_name") or command.get("user_id") or ""),
    )


def thread_of(event: Mapping[str, Any]) -> str | None:
    """Channel messages thread under themselves; DMs stay a flat conversation unless threaded."""
    thread = event.get("thread_ts")
    if thread:
        return str(thread)
    if event.get("channel_type") == "im":
        return None
    ts = event.get("ts")
    return str(ts) if ts else None
