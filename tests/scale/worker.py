"""`personabot slack` (HTTP mode) with the scripted generator in place of the model.

Run as `python -m tests.scale.worker`: everything else is the production runner,
`adapters.slack.server.serve`, configured from the environment: the conversation log
(DATABASE_URL), Redis rate limits and event de-duplication (REDIS_URL), the operations port
(PERSONABOT_OPS_PORT) and JSON logs.
"""

from __future__ import annotations

import atexit

from adapters.slack.server import serve
from adapters.slack.settings import load_slack_settings
from bot.core import DialogueCore
from bot.factory import build_core
from bot.settings import load_settings
from bot.storage import open_log
from tests.fakes import ScriptedGenerator


def scripted_core() -> DialogueCore:
    """What `adapters.cli.open_core` builds, with the scripted generator."""
    settings = load_settings()
    log = open_log(settings)
    atexit.register(log.close)
    return build_core(settings, generator=ScriptedGenerator(), log=log)


if __name__ == "__main__":
    serve(load_slack_settings(), scripted_core)
