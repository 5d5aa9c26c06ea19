"""`personabot discord` in a child process, pointed at a loopback fake Discord.

Run as `python -m tests.discord.launch API_BASE GATEWAY_URL MODEL_SECONDS`: the REST base and the
gateway are the fake's, the model is a scripted one that takes MODEL_SECONDS, and everything
else (settings from the environment, the SQL log, signals, exit status) is the real command's.
"""

from __future__ import annotations

import sys
import time

import discord
import yarl
from discord.gateway import DiscordWebSocket

import adapters.cli
from bot.answering.generation import GenerationRequest
from bot.core import DialogueCore
from bot.factory import build_core
from bot.settings import load_settings
from bot.storage import open_log
from tests.fakes import ScriptedGenerator


def main() -> None:
    api_base, gateway, model_seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
    discord.http.Route.BASE = api_base
    DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)

    def slow_model(_: GenerationRequest) -> str:
        time.sleep(model_seconds)
        return ""

    def open_core() -> DialogueCore:
        settings = load_settings()
        return build_core(settings, generator=ScriptedGenerator(slow_model), log=open_log(settings))

    adapters.cli.open_core = open_core  # type: ignore[assignment]
    sys.argv = ["personabot", "discord"]
    adapters.cli.main()


if __name__ == "__main__":
    main()
