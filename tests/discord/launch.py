"""`personabot discord` in a child process, pointed at a loopback fake Discord.

Run as `python -m tests.discord.launch API_BASE GATEWAY_URL SECONDS`: the REST base and the
gateway are the fake's, the model is a scripted one, and each turn takes at least SECONDS
(the log's write waits that long, so an answer is in progress whether or not the core asks the
model); everything else (settings from the environment, the SQL log, signals, exit status) is
the real command's.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import discord
import yarl
from discord.gateway import DiscordWebSocket

import adapters.cli
from bot.core import DialogueCore
from bot.factory import build_core
from bot.messages import Exchange
from bot.settings import load_settings
from bot.storage import SqlConversationLog, open_log
from tests.fakes import ScriptedGenerator


class SlowLog:
    """The real SQL log whose writes take `seconds` longer, as a busy database's would."""

    def __init__(self, log: SqlConversationLog, seconds: float) -> None:
        self._log = log
        self._seconds = seconds

    def record(self, exchange: Exchange) -> None:
        time.sleep(self._seconds)
        self._log.record(exchange)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._log, name)


def main() -> None:
    api_base, gateway, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    discord.http.Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    def open_core() -> DialogueCore:
        settings = load_settings()
        log = SlowLog(open_log(settings), seconds)
        return build_core(settings, generator=ScriptedGenerator(), log=log)

    adapters.cli.open_core = open_core  # type: ignore[assignment]
    sys.argv = ["personabot", "discord"]
    adapters.cli.main()


if __name__ == "__main__":
    main()
