"""A reply that grows on Discord: posted at its first piece, edited as more arrives.

Edits of one message are spaced by `interval` (Discord allows about one a second per message
before its rate limits push back); text past 2,000 characters continues in new messages, each a
reply to the one before, so a reply chain can be followed back to the question. A 429 that
discord.py does not retry itself (one without Discord's `Via` header: Cloudflare's) is waited
out and retried here, so an answer is delivered once or recorded as failed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any, TypeVar

import discord

from .formatting import MESSAGE_LIMIT, neutralise_mentions, split_message

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
T = TypeVar("T")
# Posts one chunk, as a reply to the previous message of this reply when there is one.
Poster = Callable[[str, Any, discord.ui.View | None], Awaitable[Any]]
_RETRIES = 4
# The typing indicator is shown only when nothing is posted this soon: the direct answer usually
# is, and a typing event sent after a message would show "typing…" under the finished text.
TYPING_AFTER_S = 0.4
_DEFAULT_RETRY_S = 1.0
_MAX_RETRY_S = 30.0


class DeliveryError(Exception):
    """Discord did not take a message even after the retries; the detail goes to the log."""


def retry_after(exc: discord.HTTPException) -> float:
    """Seconds a 429 asks to wait: its Retry-After header, else the body's, else one second."""
    header = exc.response.headers.get("Retry-After") if exc.response is not None else None
    for value in (header, getattr(exc, "retry_after", None)):
        try:
            if value is not None:
                return min(_MAX_RETRY_S, max(0.0, float(value)))
        except ValueError:
            continue
    return _DEFAULT_RETRY_S


async def with_retries(call: Callable[[], Awaitable[T]]) -> T:
    """Runs one REST call, retrying 429s discord.py gave up on; other errors end delivery."""
    for attempt in range(_RETRIES):
        try:
            return await call()
        except discord.HTTPException as exc:
            if exc.status != 429 or attempt == _RETRIES - 1:
                raise DeliveryError(f"HTTP {exc.status}: {exc.text or exc}"[:300]) from exc
            wait = retry_after(exc)
            logger.warning("Discord answered 429 without a usable retry; waiting %.2fs", wait)
            await asyncio.sleep(wait)
    raise AssertionError("unreachable")


class StreamedReply:
    """Shows `prefix` + the streamed text, then the final content with its view on the last message."""

    def __init__(
        self,
        post: Poster,
        *,
        interval: float,
        prefix: str = "",
        existing: list[Any] | None = None,
        limit: int = MESSAGE_LIMIT,
    ) -> None:
        self._post = post
        self._interval = interval
        self._prefix = prefix
        self._limit = limit
        self.messages: list[Any] = list(existing or [])
        self._shown: list[str | None] = [None] * len(self.messages)
        self._edited_at: list[float] = [0.0] * len(self.messages)
        self._text = ""
        self._final: str | None = None
        self._view: discord.ui.View | None = None
        self._changed = asyncio.Event()
        self.posted = asyncio.Event()  # set once the first message is up
        self.edits = 0

    def feed(self, piece: str) -> None:
        """One more piece of the reply's text (called on the event loop)."""
        self._text += piece
        self._changed.set()

    def finish(self, content: str, view: discord.ui.View | None = None) -> None:
        """The whole reply as it should finally read, and the view its last message carries."""
        self._final = content
        self._view = view
        self._changed.set()

    async def type_until_posted(self, channel: discord.abc.Messageable) -> None:
        """Shows "typing…" in `channel` while nothing is posted, if that takes a while."""
        try:
            await asyncio.wait_for(self.posted.wait(), TYPING_AFTER_S)
            return
        except TimeoutError:
            pass
        try:
            async with channel.typing():
                await self.posted.wait()
        except discord.HTTPException:
            logger.info("could not show the typing indicator", exc_info=True)

    async def run(self, render: Callable[[str], str]) -> None:
        """Shows each state of the reply until the final one is shown; raises DeliveryError."""
        while True:
            await self._changed.wait()
            self._changed.clear()
            final = self._final is not None
            body = self._final if self._final is not None else render(self._text)
            if not body.strip() and not final:
                continue
            await self._show(split_message(self._prefix + body, self._limit), final)
            if final:
                return

    async def _show(self, chunks: list[str], final: bool) -> None:
        for number, chunk in enumerate(chunks):
            view = self._view if final and number == len(chunks) - 1 else None
            if number < len(self.messages):
                if self._shown[number] != chunk or view is not None:
                    await self._edit(number, chunk, view)
            else:
                previous = self.messages[-1] if self.messages else None
                content = neutralise_mentions(chunk)
                sent = await with_retries(partial(self._post, content, previous, view))
                self.messages.append(sent)
                self.posted.set()
                self._shown.append(chunk)
                self._edited_at.append(time.monotonic())
        if final:
            for extra in self.messages[len(chunks) :]:
                await with_retries(extra.delete)
            del self.messages[len(chunks) :]

    async def _edit(self, number: int, chunk: str, view: discord.ui.View | None) -> None:
        wait = self._edited_at[number] + self._interval - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        message = self.messages[number]
        options: dict[str, Any] = {
            "content": neutralise_mentions(chunk),
            "allowed_mentions": NO_PINGS,
        }
        if view is not None:
            options["view"] = view
        if not isinstance(message, discord.WebhookMessage):
            options["suppress"] = True  # Message.edit would otherwise switch previews back on
        edited = await with_retries(lambda: message.edit(**options))
        if edited is not None:
            self.messages[number] = edited
        self._shown[number] = chunk
        self._edited_at[number] = time.monotonic()
        self.edits += 1
