"""The persona as a discord.py bot: triggers, conversations, streamed replies, commands, feedback."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Generic, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.errors import PersonabotError
from bot.messages import Exchange, IncomingMessage
from bot.serving.inference import InferenceQueue, QueueFullError
from bot.serving.logging_setup import request_context
from bot.serving.ratelimit import RateLimiter, TokenBucketLimiter

from .feedback import VoteButton, feedback_view, mark_of
from .formatting import neutralise_mentions, render_reply, render_text
from .incoming import clean, is_own_role, looks_like_question, plain_text
from .settings import DiscordSettings
from .streaming import NO_PINGS, DeliveryError, StreamedReply, with_retries
from .sync import STATE_FILE, sync_commands

logger = logging.getLogger(__name__)
PLATFORM = "discord"
# How far back a reply chain is followed to find its root; beyond it the chain starts anew.
MAX_CHAIN_HOPS = 25
# A thread the bot has not been seen in is looked up in its last messages, at most this often.
_THREAD_HISTORY = 50
_THREAD_RECHECK_S = 600.0

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

    def pop(self, key: K) -> V | None:
        return self._items.pop(key, None)

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class SentReply:
    """A cache of what the bot's messages carry in their buttons: the exchange and conversation."""

    exchange_id: str
    thread: str


@dataclass
class Answer:
    """A question being answered or answered: its task, the bot's messages and the text answered."""

    content: str
    task: asyncio.Task[None] | None = None
    messages: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class Canned:
    """A reply from a template instead of an answer (rate limits, size); `quiet`: say nothing."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    quiet: bool = False


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


def permalink(guild_id: int | None, message: Any) -> str:
    """The message's jump link, built from where it was asked: an interaction's follow-up does
    not know its server, so its own `jump_url` would point into DMs."""
    return f"https://discord.com/channels/{guild_id or '@me'}/{message.channel.id}/{message.id}"


def build_intents() -> discord.Intents:
    """Guild and DM messages, with content (privileged) so that thread follow-ups need no mention."""
    intents = discord.Intents.none()
    intents.guilds = True
    intents.guild_messages = True
    intents.dm_messages = True
    intents.message_content = True
    return intents


class PersonaTree(app_commands.CommandTree[Any]):
    """Answers a command Discord still shows but this version no longer has, instead of silence."""

    async def on_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError, /
    ) -> None:
        if isinstance(error, app_commands.CommandNotFound | app_commands.CommandSignatureMismatch):
            text = (
                "I don't have that command (any more): your Discord may show an old list. "
                "Try `/ask`, `/about` or `/forget`."
            )
        else:
            logger.error("command %s failed", interaction.command, exc_info=error)
            text = "Something went wrong on my side; please try again."
        with contextlib.suppress(discord.HTTPException):
            if interaction.response.is_done():
                await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_PINGS)
            else:
                await interaction.response.send_message(
                    text, ephemeral=True, allowed_mentions=NO_PINGS
                )


class PersonaBot(commands.Bot):
    """Answers mentions, DMs, reply chains and thread questions through the shared core and queue."""

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
        # The bot never joins voice, so discord.py's notes about missing voice libraries are noise.
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=build_intents(),
            allowed_mentions=NO_PINGS,
            help_command=None,
            tree_cls=PersonaTree,
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
        self.answers: BoundedMap[int, Answer] = BoundedMap(settings.tracked_messages)
        self.answered_threads: BoundedMap[int, bool] = BoundedMap(settings.tracked_messages)
        self._thread_checked: BoundedMap[int, float] = BoundedMap(settings.tracked_messages)
        self._warned_until: BoundedMap[str, float] = BoundedMap(settings.tracked_messages)
        # Each person's latest conversation per channel, which /forget clears.
        self._latest: BoundedMap[tuple[str, str], str] = BoundedMap(settings.tracked_messages)
        self._work: set[asyncio.Task[Any]] = set()
        self.draining = False

    async def setup_hook(self) -> None:
        """Registers the commands and the vote buttons, then syncs the commands if they changed."""
        self._add_commands()
        self.add_dynamic_items(VoteButton)
        if self.settings.sync_commands:
            state = Path(self.core.settings.data_dir) / STATE_FILE
            await sync_commands(self, self.tree, self.settings.command_guild_ids, state)

    async def drain(self, grace_s: float) -> bool:
        """Stops taking questions and waits up to `grace_s` for answers in progress; True if all
        finished (any still running are cut off when the event loop ends)."""
        self.draining = True
        pending = {task for task in self._work if not task.done()}
        if pending:
            logger.info("waiting up to %.1fs for %d answers in progress", grace_s, len(pending))
            _, pending = await asyncio.wait(pending, timeout=grace_s)
        return not pending

    async def close(self) -> None:
        self._close_normally()
        await super().close()
        await asyncio.to_thread(self.queue.close)

    def _close_normally(self) -> None:
        """Makes the gateway close a normal closure (1000), so Discord ends the session at once.

        discord.py closes with 1000, but that close wakes its own gateway reader, which closes
        the socket first with 4000 (a code that keeps the session open for a resume); every
        close of these sockets from now on is therefore sent as 1000.
        """
        shards = getattr(self, "shards", None)
        sockets = [getattr(info, "_parent", None) for info in shards.values()] if shards else [self]
        for holder in sockets:
            socket = getattr(getattr(holder, "ws", None), "socket", None)
            if socket is None or socket.closed:
                continue
            close = socket.close

            async def normal(
                *, code: int = 1000, message: bytes = b"", _close: Any = close
            ) -> bool:
                return bool(await _close(code=1000, message=message))

            socket.close = normal

    def _track(self) -> None:
        """Counts the running event handler as work that shutdown waits for."""
        task = asyncio.current_task()
        if task is not None:
            self._work.add(task)
            task.add_done_callback(self._work.discard)

    # -- messages -------------------------------------------------------------------------------

    async def on_message(self, message: discord.Message) -> None:
        await self._consider(message)

    async def on_raw_message_edit(self, payload: discord.RawMessageUpdateEvent) -> None:
        """An edited question is answered anew, in the same messages; an unchanged one is not."""
        message = payload.message
        earlier = self.answers.get(message.id)
        if message.edited_at is None or (
            earlier is not None and earlier.content == message.content
        ):
            return  # Discord also sends updates for link previews and pins, unedited
        if earlier is not None and earlier.task is not None and not earlier.task.done():
            earlier.task.cancel()
        await self._consider(message, reuse=earlier.messages if earlier else None)

    async def on_raw_message_delete(self, payload: discord.RawMessageDeleteEvent) -> None:
        """A question deleted while it is being answered is not answered: the answer is withdrawn."""
        earlier = self.answers.pop(payload.message_id)
        if earlier is None or earlier.task is None or earlier.task.done():
            return
        earlier.task.cancel()
        for posted in earlier.messages:
            with contextlib.suppress(discord.HTTPException, DeliveryError):
                await with_retries(posted.delete)

    async def _consider(self, message: discord.Message, reuse: list[Any] | None = None) -> None:
        """Answers a message addressed to the persona; everything else is left alone."""
        me = self.user
        if me is None or message.author.bot or self.draining:
            return
        place = place_of(message.channel, message.guild.id if message.guild else None)
        if not self._allowed(place):
            return
        cleaned = plain_text(message, me.id)
        if not await self._addressed(message, me, cleaned.addressed, cleaned.text):
            return
        if await asyncio.to_thread(
            self.moderation.is_banned, PLATFORM, place.tenant, str(message.author.id)
        ):
            return
        self._track()
        answer = Answer(message.content, asyncio.current_task(), list(reuse or []))
        self.answers.put(message.id, answer)
        thread = await self._conversation(message, place)
        self._latest.put((str(message.channel.id), str(message.author.id)), thread)
        incoming = IncomingMessage(
            text=cleaned.text,
            raw_text=message.content,
            platform=PLATFORM,
            tenant=place.tenant,
            channel=place.channel,
            thread=thread,
            user_id=str(message.author.id),
            user_name=message.author.display_name,
            received_at=message.created_at,
        )
        question = message.to_reference(fail_if_not_exists=False)

        async def post(content: str, previous: Any, view: discord.ui.View | None) -> Any:
            reference = previous.to_reference(fail_if_not_exists=False) if previous else question
            return await message.channel.send(
                content,
                reference=reference,
                mention_author=False,
                allowed_mentions=NO_PINGS,
                suppress_embeds=True,
                view=view or discord.utils.MISSING,
            )

        stream = StreamedReply(
            post, interval=self.settings.edit_interval_seconds, existing=answer.messages
        )
        answer.messages = stream.messages
        canned = self._canned(incoming, place, warn_once=True)
        if canned is not None and canned.quiet:
            return
        typing = asyncio.create_task(stream.type_until_posted(message.channel))
        try:
            await self._deliver(incoming, place, stream, canned)
        finally:
            typing.cancel()
        if isinstance(message.channel, discord.Thread):
            self.answered_threads.put(message.channel.id, True)

    def _allowed(self, place: Place) -> bool:
        if place.guild_id is None:
            return self.settings.allow_dms
        guilds, channels = self.settings.guild_ids, self.settings.channel_ids
        return (not guilds or place.guild_id in guilds) and (
            not channels or place.channel_id in channels
        )

    async def _addressed(
        self, message: discord.Message, me: discord.ClientUser, mentioned: bool, text: str
    ) -> bool:
        """A DM, a mention (of the bot or its role), a reply to the bot, or a question in a
        thread the bot answered in or started; chatter in such a thread is left to the people."""
        if message.guild is None or mentioned or me in message.mentions:
            return True
        if any(is_own_role(role, me.id) for role in message.role_mentions):
            return True
        reference = message.reference
        if reference is not None and reference.message_id is not None:
            resolved = reference.resolved
            if reference.message_id in self.sent or (
                isinstance(resolved, discord.Message) and resolved.author.id == me.id
            ):
                return True
        channel = message.channel
        if not isinstance(channel, discord.Thread) or not looks_like_question(text):
            return False
        return await self._answered_in(channel, me)

    async def _answered_in(self, thread: discord.Thread, me: discord.ClientUser) -> bool:
        """Whether the bot started or has spoken in this thread: remembered, else read from the
        thread's recent messages (once; a "no" is asked again after a while), so a restart does
        not make it deaf to a thread it was part of."""
        if thread.owner_id == me.id or thread.id in self.answered_threads:
            return True
        checked = self._thread_checked.get(thread.id)
        if checked is not None and time.monotonic() - checked < _THREAD_RECHECK_S:
            return False
        self._thread_checked.put(thread.id, time.monotonic())
        try:
            async for earlier in thread.history(limit=_THREAD_HISTORY):
                if earlier.author.id == me.id:
                    self.answered_threads.put(thread.id, True)
                    return True
        except discord.HTTPException:
            logger.warning("could not read the history of thread %s", thread.id)
        return False

    async def _conversation(self, message: discord.Message, place: Place) -> str:
        """The conversation's id: a Discord thread's id; "" in a DM; otherwise the root of the
        reply chain (a question that replies to nothing is the root of the chain its answer
        starts). The bot's own messages name their conversation in their buttons, so following
        a chain needs no memory and usually no request."""
        if place.thread is not None:
            return place.thread
        if message.guild is None:
            return ""
        current = message
        for _ in range(MAX_CHAIN_HOPS):
            if self.user is not None and current.author.id == self.user.id:
                known = self.sent.get(current.id)
                mark = mark_of(current)
                if known is not None or (mark is not None and mark.thread):
                    return known.thread if known is not None else mark.thread  # type: ignore[union-attr]
                if current.interaction_metadata is not None:
                    return str(current.interaction_metadata.id)
            reference = current.reference
            if reference is None or reference.message_id is None:
                return str(current.id)
            if reference.type is not discord.MessageReferenceType.reply:
                return str(current.id)  # a forwarded message starts its own conversation
            parent = await self._referenced(current, reference)
            if parent is None:
                return str(reference.message_id)
            current = parent
        return str(current.id)

    async def _referenced(
        self, message: discord.Message, reference: discord.MessageReference
    ) -> discord.Message | None:
        if isinstance(reference.resolved, discord.Message):
            return reference.resolved
        if reference.cached_message is not None:
            return reference.cached_message
        if reference.message_id is None or reference.channel_id != message.channel.id:
            return None
        try:
            return await message.channel.fetch_message(reference.message_id)
        except discord.HTTPException:
            return None

    # -- controls shared by messages and slash commands ------------------------------------------

    def _canned(self, incoming: IncomingMessage, place: Place, warn_once: bool) -> Canned | None:
        """None to go ahead; otherwise the canned reply to give instead (or to keep quiet).
        The channel limit counts a channel, or a Discord thread, whatever its conversations."""
        now = time.monotonic()
        for key, limiter in (
            (f"user:{incoming.user_id}", self.user_limiter),
            (f"channel:{place.thread or place.channel}", self.channel_limiter),
        ):
            decision = limiter.hit(key)
            if decision.allowed:
                continue
            if warn_once:
                if (self._warned_until.get(key) or 0.0) > now:
                    return Canned("slow_down", quiet=True)
                self._warned_until.put(key, now + decision.retry_after_s)
            return Canned("slow_down", {"seconds": max(1, math.ceil(decision.retry_after_s))})
        if len(incoming.text) > self.settings.max_input_chars:
            return Canned("too_long", {"limit": self.settings.max_input_chars})
        return None

    async def _exchange(self, incoming: IncomingMessage, stream: StreamedReply) -> Exchange:
        """The core's exchange, its text streamed; an in-voice apology (logged) when it cannot."""
        loop = asyncio.get_running_loop()

        def on_text(piece: str) -> None:
            loop.call_soon_threadsafe(stream.feed, piece)

        try:
            with request_context():
                return await self.queue.respond(incoming, on_text)
        except QueueFullError:
            template = "busy"
        except PersonabotError:
            logger.warning("generation failed", exc_info=True)
            template = "unavailable"
        return await asyncio.to_thread(self.core.record_canned, incoming, template)

    async def _deliver(
        self,
        incoming: IncomingMessage,
        place: Place,
        stream: StreamedReply,
        canned: Canned | None,
    ) -> Exchange:
        """Streams the answer (or a canned reply), adds the vote buttons, records the delivery."""
        runner = asyncio.create_task(stream.run(render_text))
        try:
            if canned is not None:
                exchange = await asyncio.to_thread(
                    self.core.record_canned, incoming, canned.template, **canned.values
                )
            else:
                exchange = await self._exchange(incoming, stream)
            thread = incoming.thread or ""
            stream.finish(render_reply(exchange.reply), feedback_view(exchange.id, thread))
            detail = ""
            try:
                await runner
            except DeliveryError as exc:
                detail = str(exc)
                logger.warning("reply %s not delivered: %s", exchange.id, detail)
        finally:
            runner.cancel()
        for posted in stream.messages:
            self.sent.put(posted.id, SentReply(exchange.id, thread))
        first = stream.messages[0] if stream.messages else None
        await asyncio.to_thread(
            self.moderation.record_delivery,
            exchange.id,
            str(first.id) if first is not None else None,
            permalink(place.guild_id, first) if first is not None else None,
            not detail and first is not None,
            detail,
        )
        return exchange

    # -- feedback ----------------------------------------------------------------------------------

    async def record_vote(
        self, interaction: discord.Interaction, exchange_id: str, value: int
    ) -> None:
        """One vote per person per reply, changeable; only the voter sees the confirmation."""
        voter = f"{PLATFORM}:{interaction.user.id}"
        recorded = await asyncio.to_thread(self.moderation.vote, exchange_id, voter, value)
        text = (
            ("Thanks, noted 👍" if value > 0 else "Thanks, noted 👎")
            + " (click the other button to change your vote)."
            if recorded
            else "I no longer have a record of that reply, so the vote was not counted."
        )
        await self._private(interaction, text)

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
        """Cheap refusals answer at once (privately); a real question is deferred, then streamed
        through the follow-up message. Its conversation is the interaction's own until someone
        replies to the answer."""
        place = self._interaction_place(interaction)
        user = interaction.user
        me_id = self.user.id if self.user else 0
        cleaned = clean(question, me_id, guild=interaction.guild)
        thread = place.thread if place.thread is not None else str(interaction.id)
        if place.guild_id is None:
            thread = ""
        self._latest.put((str(interaction.channel_id), str(user.id)), thread)
        incoming = IncomingMessage(
            text=cleaned.text,
            raw_text=question,
            platform=PLATFORM,
            tenant=place.tenant,
            channel=place.channel,
            thread=thread,
            user_id=str(user.id),
            user_name=user.display_name,
            received_at=interaction.created_at,
        )
        if self.draining:
            await self._private(interaction, "I'm restarting; please ask again in a minute.")
            return
        if not self._allowed(place):
            await self._private(interaction, "I don't answer questions in this channel.")
            return
        if await asyncio.to_thread(self.moderation.is_banned, PLATFORM, place.tenant, str(user.id)):
            await self._private(interaction, "Sorry, you can't ask me questions here.")
            return
        canned = self._canned(incoming, place, warn_once=False)
        if canned is not None:
            exchange = await asyncio.to_thread(
                self.core.record_canned, incoming, canned.template, **canned.values
            )
            await self._private(interaction, exchange.reply.text)
            return
        self._track()
        if not await self._acknowledge(interaction, ephemeral=False):
            return

        async def post(content: str, _previous: Any, view: discord.ui.View | None) -> Any:
            return await interaction.followup.send(
                content,
                allowed_mentions=NO_PINGS,
                suppress_embeds=True,
                view=view or discord.utils.MISSING,
                wait=True,
            )

        quoted = render_text(" ".join(question.split()))
        stream = StreamedReply(
            post, interval=self.settings.edit_interval_seconds, prefix=f"> {quoted}\n\n"
        )
        await self._deliver(incoming, place, stream, None)

    async def about(self, interaction: discord.Interaction) -> None:
        meta = self.core.knowledge.metadata
        topics = "\n".join(f"- {topic}" for topic in meta.topics)
        text = (
            f"**{meta.persona_name}** (AI persona)\n{meta.disclosure}\n\n"
            f'Source: "{meta.title}" by {meta.author}, in the book "{meta.book}". '
            "Every answer quotes and cites the essay's passages.\n\n"
            f"I can talk about:\n{topics}\n\n"
            "Mention me, DM me, or use `/ask`; reply to one of my answers to go on with it. "
            "`/forget` clears our conversation here; 👍/👎 under an answer tell the moderators "
            'how it was; to flag a bad answer, right-click it → Apps → "Report reply".'
        )
        await self._private(interaction, text)

    async def forget(self, interaction: discord.Interaction) -> None:
        """Clears the conversation here: the thread's, or the caller's latest in this channel."""
        place = self._interaction_place(interaction)
        latest = self._latest.get((str(interaction.channel_id), str(interaction.user.id)))
        incoming = IncomingMessage(
            text="",
            platform=PLATFORM,
            tenant=place.tenant,
            channel=place.channel,
            thread=place.thread if place.thread is not None else latest or "",
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
        if not await self._acknowledge(interaction, ephemeral=True):
            return
        known = self.sent.get(message.id)
        mark = mark_of(message)
        exchange_id = known.exchange_id if known else mark.exchange_id if mark else None
        if self.user is None or message.author.id != self.user.id:
            text = "Only my own replies can be reported."
        elif exchange_id is None:
            text = "I no longer have a record of that reply, so it cannot be reported."
        else:
            user = interaction.user
            flagged = await asyncio.to_thread(
                self.moderation.flag,
                exchange_id,
                f"{PLATFORM}:{user.id}",
                f'"Report reply" by {user} in guild {interaction.guild_id or "dm"}, '
                f"channel {interaction.channel_id}, message {message.id}",
            )
            text = (
                "Thank you: the moderators will review that reply."
                if flagged
                else "I no longer have a record of that reply, so it cannot be reported."
            )
        try:
            await with_retries(
                partial(interaction.followup.send, text, ephemeral=True, allowed_mentions=NO_PINGS)
            )
        except DeliveryError as exc:
            logger.warning("could not confirm a report: %s", exc)

    async def _acknowledge(self, interaction: discord.Interaction, *, ephemeral: bool) -> bool:
        """Defers ("thinking…"), retrying a 429 that discord.py gave up on; False if it failed."""
        try:
            await with_retries(
                partial(interaction.response.defer, ephemeral=ephemeral, thinking=True)
            )
        except DeliveryError as exc:
            logger.warning("could not acknowledge %s: %s", interaction.command, exc)
            return False
        return True

    async def _private(self, interaction: discord.Interaction, text: str) -> None:
        try:
            await with_retries(
                partial(
                    interaction.response.send_message,
                    neutralise_mentions(text),
                    ephemeral=True,
                    allowed_mentions=NO_PINGS,
                )
            )
        except DeliveryError as exc:
            logger.warning("could not answer %s privately: %s", interaction.command, exc)


class ShardedPersonaBot(PersonaBot, commands.AutoShardedBot):
    """The same bot, letting discord.py pick and run the number of shards Discord recommends."""
