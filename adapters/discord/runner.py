"""Starts the bot and turns Discord's fatal answers (bad token, missing intent) into one clear line."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import aiohttp
import discord

from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.errors import ConfigurationError, PersonabotError

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


def create_bot(
    core: DialogueCore, moderation: ModerationStore, settings: DiscordSettings
) -> PersonaBot:
    kind = ShardedPersonaBot if settings.auto_shard else PersonaBot
    return kind(core, moderation, settings)


async def serve(bot: PersonaBot, token: str) -> None:
    """Runs until closed; a rejected token or intent ends it at once instead of retrying."""
    async with bot:
        try:
            await bot.start(token)
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
    store = moderation or moderation_store_of(core)
    discord.utils.setup_logging(level=logging.INFO)
    asyncio.run(serve(create_bot(core, store, settings), token))
