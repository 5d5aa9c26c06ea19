from __future__ import annotations

import asyncio
import threading
import time

from bot.answering.generation import GenerationRequest
from bot.factory import build_core
from bot.messages import IncomingMessage
from bot.serving.inference import InferenceQueue
from bot.settings import Settings
from tests.fakes import ScriptedGenerator


async def test_nobody_waits_past_the_deadline_behind_a_slow_model(settings: Settings) -> None:
    release = threading.Event()

    def slow(request: GenerationRequest) -> str:
        release.wait(request.deadline_s or 5)
        return "Clinton was elected under the motto about the economy."

    core = build_core(
        settings.model_copy(update={"generation_deadline_s": 0.6, "model_adds": True}),
        generator=ScriptedGenerator(slow),
    )
    queue = InferenceQueue(core)
    started = time.monotonic()
    question = "What was Clinton's election motto?"
    try:
        exchanges = await asyncio.gather(
            *(queue.respond(IncomingMessage(text=question, user_id=f"u{n}")) for n in range(6))
        )
    finally:
        release.set()
        queue.close()
    elapsed = time.monotonic() - started
    assert elapsed < 0.6 + 1.0
    assert all("economy" in e.reply.text and not e.reply.refused for e in exchanges)
    skipped = [e for e in exchanges if any(v.check == "generation" for v in e.reply.moderation)]
    assert len(skipped) >= 5
