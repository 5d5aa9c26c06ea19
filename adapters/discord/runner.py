"""Starts the bot and turns Discord's fatal answers (bad token, missing intent) into one clear line."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable
from typing import Any

import aiohttp
import discord
import yarl
from discord.gateway import DiscordWebSocket

from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.errors import ConfigurationError, PersonabotError
from bot.serving.logging_setup import configure_logging
from bot.serving.ops import Operations
from bot.serving.ratelimit import RateLimiter
from bot.serving.redis_state import RedisRateLimiter, connect
from bot.settings import Settings

from .bot import PersonaBot, ShardedPersonaBot
from .settings import DiscordSettings

_BAD_TOKEN = (
    "Discord rejected DISCORD_TOKEN: reset the bot token in the developer portal "
    "(Applications → your app → Bot) and set DISCORD_TOKEN to it."
)
_NO_INTENT = (
    "Discord refused the Message Content intent: enable it under Applications → your app → "
    "Bot → Privileged Gateway Intents, then start again."
)
_AUTHENTICATION_FAILED = 4004
_GATEWAY_PROBE_S = 10.0
logger = logging.getLogger(__name__)


def shared_limiters(
    core_settings: Settings, settings: DiscordSettings
) -> tuple[RateLimiter | None, RateLimiter | None]:
    """With REDIS_URL, every shard process spends from the same per-user and per-channel buckets."""
    if not core_settings.redis_url:
        return None, None
    client = connect(core_settings.redis_url)
    return (
        RedisRateLimiter(
            client, settings.user_rate, settings.user_rate_seconds, "pb:discord:rate:"
        ),
        RedisRateLimiter(
            client, settings.channel_rate, settings.channel_rate_seconds, "pb:discord:rate:"
        ),
    )


def create_bot(
    core: DialogueCore, moderation: ModerationStore, settings: DiscordSettings
) -> PersonaBot:
    """One process runs every shard (auto_shard), its shard_ids of shard_count, or one session."""
    user_limiter, channel_limiter = shared_limiters(core.settings, settings)
    limits: dict[str, Any] = {"user_limiter": user_limiter, "channel_limiter": channel_limiter}
    if settings.shard_count is not None:
        ids = list(settings.shard_ids) or list(range(settings.shard_count))
        return ShardedPersonaBot(
            core, moderation, settings, shard_ids=ids, shard_count=settings.shard_count, **limits
        )
    kind = ShardedPersonaBot if settings.auto_shard else PersonaBot
    return kind(core, moderation, settings, **limits)


async def serve(bot: PersonaBot, token: str) -> None:
    """Runs until closed or until SIGTERM/SIGINT, which let answers in progress finish (within
    the grace period) before the gateway is closed cleanly; a rejected token or intent, or a
    gateway that cannot be reached, ends it at once instead of retrying."""
    async with bot:
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        handled = []
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, stop.set)
                handled.append(signum)
        running = asyncio.create_task(_connect(bot, token))
        stopping = asyncio.create_task(stop.wait())
        try:
            await asyncio.wait({running, stopping}, return_when=asyncio.FIRST_COMPLETED)
            if stopping.done() and not running.done():
                grace = bot.settings.shutdown_grace_seconds
                finished = await bot.drain(grace)
                logger.info(
                    "shutting down: %s",
                    "answers finished" if finished else f"answers cut off after {grace:.0f}s",
                )
                await bot.close()
            await running
        finally:
            stopping.cancel()
            for signum in handled:
                loop.remove_signal_handler(signum)


async def _connect(bot: PersonaBot, token: str) -> None:
    try:
        await bot.login(token)
        await _probe_gateway(bot)
        await bot.connect()
    except discord.LoginFailure:
        raise ConfigurationError(_BAD_TOKEN) from None
    except discord.PrivilegedIntentsRequired:
        raise ConfigurationError(_NO_INTENT) from None
    except discord.ConnectionClosed as exc:
        if exc.code == _AUTHENTICATION_FAILED:
            raise ConfigurationError(_BAD_TOKEN) from None
        raise
    except (aiohttp.ClientError, OSError) as exc:  # at login; later drops are retried
        raise PersonabotError(f"Cannot reach Discord: {exc}") from None
    except AttributeError:
        # discord.py's reconnect path reads the session of a gateway it never reached.
        if bot.ws is None:
            raise PersonabotError("Cannot reach Discord's gateway.") from None
        raise


async def _probe_gateway(bot: PersonaBot) -> None:
    """Opens (and closes) one TCP connection to the gateway the client will use, so that a
    gateway that cannot be reached at start-up is one clear error rather than a retry loop."""
    url = DiscordWebSocket.DEFAULT_GATEWAY
    if isinstance(bot, discord.AutoShardedClient) and bot.shard_count is None:
        _, address, _ = await bot.http.get_bot_gateway()
        url = yarl.URL(address)
    secure = url.scheme in ("wss", "https")
    port = url.port or (443 if secure else 80)
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(url.host, port, ssl=True if secure else None),
            _GATEWAY_PROBE_S,
        )
    except (OSError, TimeoutError) as exc:
        reason = str(exc) or type(exc).__name__
        raise PersonabotError(f"Cannot reach Discord's gateway at {url}: {reason}") from None
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()


def moderation_store_of(core: DialogueCore) -> ModerationStore:
    """The moderators' SQL log that `open_core` attaches is also the flag and ban store."""
    log = core.log
    if callable(getattr(log, "flag", None)) and callable(getattr(log, "is_banned", None)):
        return log  # type: ignore[return-value]
    raise ConfigurationError(
        "The Discord bot needs the moderation log (bot.storage) for reports and bans; "
        "the core has none that keeps flags and bans."
    )


def run(
    open_core: Callable[[], DialogueCore],
    settings: DiscordSettings,
    moderation: ModerationStore | None = None,
) -> None:
    """Checks the token before loading the model, so a missing one fails in a moment."""
    token = settings.require_token()
    core = open_core()
    configure_logging(core.settings, extra_secrets=[token])
    store = moderation or moderation_store_of(core)
    try:
        asyncio.run(operate(core, store, settings, token))
    finally:
        flush_log(core)


def flush_log(core: DialogueCore) -> None:
    """Writes what the log still holds (its spool) before the process ends."""
    close = getattr(core.log, "close", None)
    if callable(close):
        close()


async def operate(
    core: DialogueCore, moderation: ModerationStore, settings: DiscordSettings, token: str
) -> None:
    """The bot with its operations port (when configured); ready once the gateway session is."""
    bot = create_bot(core, moderation, settings)
    operations = Operations(
        core, depth=lambda: bot.queue.depth, extra_checks={"discord": bot.is_ready}
    )
    await operations.start()
    try:
        await serve(bot, token)
    finally:
        await operations.stop()
