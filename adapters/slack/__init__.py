"""The Slack way in: a Bolt app over the dialogue core (slash command, mentions, threads, DMs)."""

from adapters.slack.app import SlackBot
from adapters.slack.dedup import Deduplicator, MemoryDeduplicator
from adapters.slack.server import build_bot, http_app, serve
from adapters.slack.settings import SlackSettings, load_slack_settings

__all__ = [
    "Deduplicator",
    "MemoryDeduplicator",
    "SlackBot",
    "SlackSettings",
    "build_bot",
    "http_app",
    "load_slack_settings",
    "serve",
]
