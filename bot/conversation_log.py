"""The contract between the core and wherever exchanges are stored for moderators."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Exchange


class ConversationLog(Protocol):
    """Stores every exchange; implementations must never raise into the reply path."""

    def record(self, exchange: Exchange) -> None: ...
