"""The Discord way in: discord.py on top of the dialogue core (see docs/discord.md)."""

from .bot import PersonaBot, ShardedPersonaBot
from .formatting import neutralise_mentions, render_reply, split_message
from .runner import create_bot, run, serve
from .settings import DiscordSettings, load_discord_settings

__all__ = [
    "DiscordSettings",
    "PersonaBot",
    "ShardedPersonaBot",
    "create_bot",
    "load_discord_settings",
    "neutralise_mentions",
    "render_reply",
    "run",
    "serve",
    "split_message",
]
