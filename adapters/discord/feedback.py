"""👍/👎 under every reply: buttons whose custom ids carry the exchange, so they outlive restarts.

The custom id also carries the reply's conversation (a thread or reply chain's root), so a reply
to the persona's message continues that conversation on any shard and after any restart,
without the bot remembering anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol

import discord

PREFIX = "pb:vote:"
_TEMPLATE = PREFIX + r"(?P<value>up|down):(?P<exchange>[0-9A-Za-z-]{1,64}):(?P<thread>\d{0,20})"
_CUSTOM_ID = re.compile(_TEMPLATE)
VALUES = {"up": 1, "down": -1}


class VoteHandler(Protocol):
    async def record_vote(
        self, interaction: discord.Interaction, exchange_id: str, value: int
    ) -> None: ...


@dataclass(frozen=True)
class ReplyMark:
    """What a reply's buttons say about it: its exchange and its conversation ("" for none)."""

    exchange_id: str
    thread: str


def custom_id(value: str, exchange_id: str, thread: str) -> str:
    return f"{PREFIX}{value}:{exchange_id}:{thread}"


def mark_of(message: discord.Message) -> ReplyMark | None:
    """The exchange and conversation a message of the bot's belongs to, read from its buttons."""
    for row in message.components:
        for component in getattr(row, "children", [row]):
            match = _CUSTOM_ID.fullmatch(getattr(component, "custom_id", None) or "")
            if match:
                return ReplyMark(match["exchange"], match["thread"])
    return None


class VoteButton(discord.ui.DynamicItem[discord.ui.Button[Any]], template=_TEMPLATE):
    """One of the two buttons; rebuilt from its custom id whenever it is clicked."""

    def __init__(self, value: str, exchange_id: str, thread: str) -> None:
        super().__init__(
            discord.ui.Button(
                style=discord.ButtonStyle.secondary,
                emoji="👍" if value == "up" else "👎",
                custom_id=custom_id(value, exchange_id, thread),
            )
        )
        self.value = VALUES[value]
        self.exchange_id = exchange_id

    @classmethod
    async def from_custom_id(
        cls,
        interaction: discord.Interaction,
        item: discord.ui.Item[Any],
        match: re.Match[str],
        /,
    ) -> VoteButton:
        return cls(match["value"], match["exchange"], match["thread"])

    async def callback(self, interaction: discord.Interaction) -> None:
        handler: VoteHandler = interaction.client  # type: ignore[assignment]
        await handler.record_vote(interaction, self.exchange_id, self.value)


def feedback_view(exchange_id: str, thread: str) -> discord.ui.View:
    """The two buttons for one reply; persistent (no timeout), answered by whichever process runs."""
    view = discord.ui.View(timeout=None)
    view.add_item(VoteButton("up", exchange_id, thread))
    view.add_item(VoteButton("down", exchange_id, thread))
    return view
