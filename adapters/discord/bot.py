"""The persona as a discord.py bot: triggers, slash commands, controls, and replies formatted for Discord."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import discord
from discord import app_commands
from discord.ext import commands
from discord.utils import escape_markdown

from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.errors import PersonabotError
from bot.messages import Exchange, IncomingMessage
from bot.serving.inference import InferenceQueue, QueueFullError
from bot.serving.logging_setup import request_context
from bot.serving.ratelimit import RateLimiter, TokenBucketLimiter

from .formatting import neutralise_mentions, render_reply, split_message
from .settings import DiscordSettings

logger = logging.getLogger(__name__)
NO_PINGS = discord.AllowedMentions.none()
PLATFORM = "discord"

K = TypeVar("K")
V = TypeVar("V")


class BoundedMap(Generic[K, V]):
    """A dict that forgets its least recently used entries beyond `limit`, so memory stays bounded."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class SentReply:
    """What the bot keeps about one of its messages: the exchange to flag, the conversation to continue."""

    exchange_id: str
    thread: str | None


@dataclass(frozen=True)
class Place:
    """Where a message was written, as the core and the allow-list see it."""

    tenant: str
    channel: str
    thread: str | None
    guild_id: int | None
    channel_id: int  # the allow-listed channel: a thread's parent


def place_of(channel: Any, guild_id: int | None) -> Place:
    """Threads count as their parent channel for the allow-list, and as a conversation of their own."""
    tenant = str(guild_id) if guild_id is not None else "dm"
    if isinstance(channel, discord.Thread) and channel.parent_id is not None:
        return Place(tenant, str(channel.parent_id), str(channel.id), guild_id, channel.parent_id)
    return Place(tenant, str(channel.id), None, guild_id, channel.id)


def build_intents() -> discord.Intents:
    """Guild and DM messages, with content (privileged) so that thread follow-ups need no mention."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


class PersonaBot(commands.Bot):
    """Answers mentions, DMs, replies and thread follow-ups through the shared core and inference queue."""

    def __init__(
        self,
        core: DialogueCore,
        moderation: ModerationStore,
        settings: DiscordSettings,
        *,
        queue: InferenceQueue | None = None,
        user_limiter: RateLimiter | None = None,
        channel_limiter: RateLimiter | None = None,
        **options: Any,
    ) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=build_intents(),
            allowed_mentions=NO_PINGS,
            help_command=None,
            **options,
        )
        self.core = core
        self.moderation = moderation
        self.settings = settings
        self.queue = queue or InferenceQueue(
            core, workers=settings.queue_workers, max_waiting=settings.queue_max_waiting
        )
        self.user_limiter = user_limiter or TokenBucketLimiter(
            settings.user_rate, settings.user_rate_seconds
        )
        self.channel_limiter = channel_limiter or TokenBucketLimiter(
            settings.channel_rate, settings.channel_rate_seconds
        )
        self.sent: BoundedMap[int, SentReply] = BoundedMap(settings.tracked_messages)
        self.answered_threads: BoundedMap[int, bool] = BoundedMap(settings.tracked_messages)
        self._warned_until: BoundedMap[str, float] = BoundedMap(settings.tracked_messages)

    async def setup_hook(self) -> None:
        """Registers the slash commands and the context menu, then syncs them where configured."""
        self._add_commands()
        if not self.settings.sync_commands:
            return
        if self.settings.command_guild_ids:
            for guild_id in self.settings.command_guild_ids:
                guild = discord.Object(id=guild_id)
                self.tree.copy_global_to(guild=guild)
                await self.tree.sync(guild=guild)
        else:
            await self.tree.sync()

    async def close(self) -> None:
        await super().close()
        await asyncio.to_thread(self.queue.close)

    # -- messages -------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        """Answers a message addressed to the persona; everything else is left alone."""
        me = self.user
        if me is None or message.author.bot:
            return
        place = place_of(message.channel, message.guild.id if message.guild else None)
        if not self._allowed(place) or not self._addressed(message, me):
            return
        if await asyncio.to_thread(
            self.moderation.is_banned, PLATFORM, place.tenant, str(message.author.id)
        ):
            return
        thread = self._conversation(message, place)
        incoming = IncomingMessage(
            text=re.sub(rf"<@!?{me.id}>", "", message.content).strip(),
            platform=PLATFORM,
            tenant=place.tenant,
            channel=place.channel,
            thread=thread,
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            received_at=message.created_at,
        )
        refusal = self._refusal(incoming, warn_once=True)
        if refusal == "":
            return
        reference = message.to_reference(fail_if_not_exists=False)
        if refusal is not None:
            await self._send_chunks(message.channel, [refusal], reference)
            return
        async with message.channel.typing():
            exchange, text = await self._respond(incoming)
        ids = await self._send_chunks(message.channel, split_message(text), reference)
        self._remember(ids, exchange, thread)
        if isinstance(message.channel, discord.Thread):
            self.answered_threads.put(message.channel.id, True)

    def _allowed(self, place: Place) -> bool:
        if place.guild_id is None:
            return self.settings.allow_dms
        guilds, channels = self.settings.guild_ids, self.settings.channel_ids
        return (not guilds or place.guild_id in guilds) and (
            not channels or place.channel_id in channels
        )

    def _addressed(self, message: discord.Message, me: discord.ClientUser) -> bool:
        """A DM, a mention, a reply to the bot, or anything in a thread the bot answered in."""
        if message.guild is None or me in message.mentions:
            return True
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            resolved = reference.resolved
            if reference.message_id in self.sent or (
                isinstance(resolved, discord.Message) and resolved.author.id == me.id
            ):
                return True
        channel = message.channel
        return isinstance(channel, discord.Thread) and (
            channel.id in self.answered_threads or channel.owner_id == me.id
        )

    def _conversation(self, message: discord.Message, place: Place) -> str | None:
        """A reply continues the conversation of the answer it replies to; threads have their own."""
        reference = message.reference
        if reference is None or reference.message_id is None:
            return place.thread
        earlier = self.sent.get(reference.message_id)
        if earlier is not None:
            return earlier.thread
        resolved = reference.resolved
        if (
            isinstance(resolved, discord.Message)
            and self.user
            and resolved.author.id == self.user.id
        ):
            return place.thread or f"reply-{reference.message_id}"
        return place.thread

    # -- controls shared by messages and slash commands ------------------------------------------

    def _refusal(self, incoming: IncomingMessage, warn_once: bool) -> str | None:
        """None to go ahead; otherwise the text to say instead ("" means stay quiet)."""
        now = time.monotonic()
        for key, limiter in (
            (f"user:{incoming.user_id}", self.user_limiter),
            (f"channel:{incoming.thread or incoming.channel}", self.channel_limiter),
        ):
            decision = limiter.hit(key)
            if decision.allowed:
                continue
            if warn_once:
                if (self._warned_until.get(key) or 0.0) > now:
                    return ""
                self._warned_until.put(key, now + decision.retry_after_s)
            return self.core.canned("slow_down", seconds=max(1, math.ceil(decision.retry_after_s)))
        if len(incoming.text) > self.settings.max_input_chars:
            return self.core.canned("too_long", limit=self.settings.max_input_chars)
        return None

    async def _respond(self, incoming: IncomingMessage) -> tuple[Exchange | None, str]:
        """The exchange and its Discord text, or an in-voice apology when the model cannot answer."""
        try:
            with request_context():
                exchange = await self.queue.respond(incoming)
        except QueueFullError:
            return None, self.core.canned("busy")
        except PersonabotError:
            logger.warning("generation failed", exc_info=True)
            return None, self.core.canned("unavailable")
        return exchange, render_reply(exchange.reply)

    async def _send_chunks(
        self,
        channel: discord.abc.Messageable,
        chunks: list[str],
        reference: discord.MessageReference | None = None,
    ) -> list[int]:
        """Sends each chunk (the first as a reply), never pinging anyone; returns the message ids."""
        ids: list[int] = []
        for number, chunk in enumerate(chunks):
            try:
                sent = await channel.send(
                    neutralise_mentions(chunk),
                    reference=reference if number == 0 else None,  # type: ignore[arg-type]
                    mention_author=False,
                    allowed_mentions=NO_PINGS,
                )
            except discord.HTTPException:
                logger.warning("could not send a reply chunk", exc_info=True)
                break
            ids.append(sent.id)
        return ids

    def _remember(self, ids: list[int], exchange: Exchange | None, thread: str | None) -> None:
        if exchange is None:
            return
        for message_id in ids:
            self.sent.put(message_id, SentReply(exchange.id, thread))

    # -- slash commands and the context menu -----------------------------------------------------

    def _add_commands(self) -> None:
        @app_commands.command(name="ask", description="Ask the persona about the essay.")
        @app_commands.describe(question="Your question about the essay.")
        async def ask(interaction: discord.Interaction, question: str) -> None:
            await self.ask(interaction, question)

        @app_commands.command(
            name="about", description="Who this persona is and where it comes from."
        )
        async def about(interaction: discord.Interaction) -> None:
            await self.about(interaction)

        @app_commands.command(name="forget", description="Clear your conversation with me here.")
        async def forget(interaction: discord.Interaction) -> None:
            await self.forget(interaction)

        @app_commands.context_menu(name="Report reply")
        async def report(interaction: discord.Interaction, message: discord.Message) -> None:
            await self.report(interaction, message)

        self.tree.add_command(ask)
        self.tree.add_command(about)
        self.tree.add_command(forget)
        self.tree.add_command(report)

    def _interaction_place(self, interaction: discord.Interaction) -> Place:
        channel = interaction.channel or discord.Object(id=interaction.channel_id or 0)
        return place_of(channel, interaction.guild_id)

    async def ask(self, interaction: discord.Interaction, question: str) -> None:
        """Cheap refusals answer at once (privately); a real question is deferred, then followed up."""
        place = self._interaction_place(interaction)
        user = interaction.user
        incoming = IncomingMessage(
            text=question.strip(),
            platform=PLATFORM,
            tenant=place.tenant,
            channel=place.channel,
            thread=place.thread,
            user_id=str(user.id),
            user_name=user.display_name,
            received_at=interaction.created_at,
        )
        if not self._allowed(place):
            await self._private(interaction, "I don't answer questions in this channel.")
            return
        if await asyncio.to_thread(self.moderation.is_banned, PLATFORM, place.tenant, str(user.id)):
            await self._private(interaction, "Sorry, you can't ask me questions here.")
            return
        refusal = self._refusal(incoming, warn_once=False)
        if refusal:
            await self._private(interaction, refusal)
            return
        await interaction.response.defer(thinking=True)
        exchange, text = await self._respond(incoming)
        ids: list[int] = []
        quoted = escape_markdown(" ".join(question.split()))
        for chunk in split_message(f"> {quoted}\n\n{text}"):
            sent = await interaction.followup.send(
                neutralise_mentions(chunk), allowed_mentions=NO_PINGS, wait=True
            )
            ids.append(sent.id)
        self._remember(ids, exchange, place.thread)

    async def about(self, interaction: discord.Interaction) -> None:
        meta = self.core.knowledge.metadata
        topics = "\n".join(f"- {topic}" for topic in meta.topics)
        text = (
            f"**{meta.persona_name}** (AI persona)\n{meta.disclosure}\n\n"
            f'Source: "{meta.title}" by {meta.author}, in the book "{meta.book}". '
            "Every answer quotes and cites the essay's passages.\n\n"
            f"I can talk about:\n{topics}\n\n"
            "Mention me, DM me, or use `/ask`. `/forget` clears our conversation here; "
            'to flag a bad answer, right-click it → Apps → "Report reply".'
        )
        await self._private(interaction, text)

    async def forget(self, interaction: discord.Interaction) -> None:
        place = self._interaction_place(interaction)
        incoming = IncomingMessage(
            text="",
            platform=PLATFORM,
            tenant=place.tenant,
            channel=place.channel,
            thread=place.thread,
            user_id=str(interaction.user.id),
        )
        forgotten = self.core.forget(incoming)
        await self._private(
            interaction,
            "Done: I have forgotten our conversation here."
            if forgotten
            else "There was nothing of ours to forget here.",
        )

    async def report(self, interaction: discord.Interaction, message: discord.Message) -> None:
        """Flags the exchange behind one of the bot's replies for moderators; only the reporter sees it."""
        await interaction.response.defer(ephemeral=True, thinking=True)
        sent = self.sent.get(message.id)
        if self.user is None or message.author.id != self.user.id:
            text = "Only my own replies can be reported."
        elif sent is None:
            text = "I no longer have a record of that reply, so it cannot be reported."
        else:
            user = interaction.user
            flagged = await asyncio.to_thread(
                self.moderation.flag,
                sent.exchange_id,
                f"{PLATFORM}:{user.id}",
                f'"Report reply" by {user} in guild {interaction.guild_id or "dm"}, '
                f"channel {interaction.channel_id}, message {message.id}",
            )
            text = (
                "Thank you: the moderators will review that reply."
                if flagged
                else "I no longer have a record of that reply, so it cannot be reported."
            )
        await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)

    async def _private(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(
            neutralise_mentions(text), ephemeral=True, allowed_mentions=NO_PINGS
        )


class ShardedPersonaBot(PersonaBot, commands.AutoShardedBot):
    """The same bot, letting discord.py pick and run the number of shards Discord recommends."""
