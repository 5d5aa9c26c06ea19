"""The contract between the core and wherever exchanges are stored for moderators."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Exchange


class ConversationLog(Protocol):
    """Stores every exchange; implementations must never raise into the reply path."""

    def record(self, exchange: Exchange) -> None: ...


class ModerationStore(Protocol):
    """What adapters need of the moderators' records: reports from users and the ban list."""

    def flag(self, exchange_id: str, reporter: str, reason: str) -> bool:
        """Marks an exchange for review; False when no such exchange is known."""
        ...

    def is_banned(self, platform: str, tenant: str, user_id: str) -> bool: ...
