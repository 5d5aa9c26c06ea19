"""The contract between the core and wherever exchanges are stored for moderators."""

from __future__ import annotations

from typing import Protocol

from bot.messages import Exchange


class ConversationLog(Protocol):
    """Stores every exchange; implementations must never raise into the reply path."""

    def record(self, exchange: Exchange) -> None: ...


class ModerationStore(Protocol):
    """What adapters need of the moderators' records: reports and votes from users, where each
    reply was delivered, and the ban list. Reporter and voter ids take the form `discord:<id>`
    or `slack:<team>:<id>`."""

    def flag(self, exchange_id: str, reporter: str, reason: str) -> bool:
        """Marks an exchange for review; False when no such exchange is known."""
        ...

    def vote(self, exchange_id: str, voter: str, value: int) -> bool:
        """Records the voter's +1 or -1 (replacing their earlier vote); False for an unknown
        exchange. Any other value is an InvalidInputError."""
        ...

    def record_delivery(
        self,
        exchange_id: str,
        message_id: str | None,
        permalink: str | None,
        delivered: bool,
        detail: str = "",
    ) -> bool:
        """Notes the posted reply's platform id and jump link, or why posting failed; False for
        an unknown exchange or a storage failure. Never raises."""
        ...

    def is_banned(self, platform: str, tenant: str, user_id: str) -> bool: ...
