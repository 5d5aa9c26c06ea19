"""What the bot sends Discord, compared with the recorded payloads in payloads/recorded_outgoing.json.

Contents and ids vary; the shape (routes, response types, flags, allowed_mentions, references)
must not drift silently. After an intended change, regenerate with
`PERSONABOT_RECORD_DISCORD=1 pytest tests/discord/test_discord_payloads.py` (that run writes the
file and fails, so a recording is never its own proof), review the diff, and run it again.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import pytest

from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import PAYLOADS, FakeDiscord, answered, until

RECORDED = PAYLOADS / "recorded_outgoing.json"
QUESTION = "Why do emerging democracies want to join NATO?"


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            key: f"<{key}>" if key in ("content", "nonce") else _normalise(item)
            for key, item in sorted(value.items())
        }
    if isinstance(value, list):
        return [_normalise(item) for item in value]
    if isinstance(value, int) and value > 10**15:
        return "<snowflake>"
    if isinstance(value, str) and value.startswith("pb:vote:"):
        return re.sub(r":[0-9a-f]{32}:\d*$", ":<exchange>:<thread>", value)
    return value


def _route(path: str) -> str:
    return re.sub(r"/(\d{15,}|itoken-\d+)", "/{id}", path)


async def test_outgoing_payloads_match_the_recording(
    fake: FakeDiscord, start_bot: BotFactory
) -> None:
    await start_bot()
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
    answer = (await answered(fake))[0]
    await fake.dispatch("INTERACTION_CREATE", fake.command("ask", {"question": QUESTION}))
    await answered(fake, count=2)
    await fake.dispatch("INTERACTION_CREATE", fake.command("about"))
    await until(lambda: len(fake.calls("POST", r"/interactions/.*")) == 2)
    await fake.dispatch("INTERACTION_CREATE", fake.message_command("Report reply", answer["id"]))
    await until(lambda: len(fake.calls("POST", r"/webhooks/\d+/[^/]+")) == 2)
    vote = answer["components"][0]["components"][0]["custom_id"]
    await fake.dispatch("INTERACTION_CREATE", fake.click(answer["id"], vote))
    await until(lambda: len(fake.calls("POST", r"/interactions/.*")) == 4)

    recorded = [
        {"method": r.method, "route": _route(r.path), "body": _normalise(r.body)}
        for r in fake.requests
        if r.method != "GET" and not r.path.endswith("/commands") and "/typing" not in r.path
    ]
    if os.environ.get("PERSONABOT_RECORD_DISCORD"):
        RECORDED.write_text(json.dumps(recorded, indent=2) + "\n")
        # A run that writes the recording must not also pass by comparing it with itself.
        pytest.fail(f"recorded {RECORDED.name}: review the diff, then run again without recording")
    assert recorded == json.loads(RECORDED.read_text())
