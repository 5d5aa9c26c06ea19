from __future__ import annotations

import asyncio
import threading
import time

from bot.answering.generation import GenerationRequest, LlamaGenerator, bundled_model_path
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


async def test_every_direct_answer_is_on_screen_while_the_model_is_busy(settings: Settings) -> None:
    """With the model's addition on and the model held up, all six people see their answer from
    the essay at once; only the addition waits."""
    release = threading.Event()
    lock = threading.Lock()

    def slow(request: GenerationRequest) -> str:
        with lock:  # one model, one generation at a time, like the in-process model
            release.wait(request.deadline_s or 5)
        return "Clinton was elected under the motto about the economy."

    core = build_core(
        settings.model_copy(update={"generation_deadline_s": 1.5, "model_adds": True}),
        generator=ScriptedGenerator(slow),
    )
    queue = InferenceQueue(core)
    started = time.monotonic()
    shown: dict[int, float] = {}

    async def ask(n: int) -> None:
        def seen(_: str) -> None:
            shown.setdefault(n, time.monotonic() - started)

        await queue.respond(
            IncomingMessage(text="What was Clinton's election motto?", user_id=f"v{n}"), seen
        )

    try:
        await asyncio.wait_for(asyncio.gather(*(ask(n) for n in range(6))), timeout=10)
    finally:
        release.set()
        queue.close()
    assert len(shown) == 6 and max(shown.values()) < 1.0


async def test_waiting_for_a_generation_worker_counts_against_the_deadline(
    settings: Settings,
) -> None:
    """The model is told the time left when it starts, not the time left when the turn asked:
    otherwise a turn that queued for the model runs past its deadline."""
    given: list[float] = []

    def busy(request: GenerationRequest) -> str:
        given.append(request.deadline_s or 0.0)
        time.sleep(0.5)
        return "Clinton was elected under the motto about the economy."

    core = build_core(
        settings.model_copy(
            update={"generation_deadline_s": 1.5, "model_adds": True, "generation_workers": 1}
        ),
        generator=ScriptedGenerator(busy),
    )
    queue = InferenceQueue(core)
    question = "What was Clinton's election motto?"
    try:
        await asyncio.gather(
            *(queue.respond(IncomingMessage(text=question, user_id=f"w{n}")) for n in range(2))
        )
    finally:
        queue.close()
    assert len(given) == 2
    assert min(given) <= 1.5 - 0.4  # the second started after the first's 0.5 s


def test_the_in_process_model_is_not_waited_for_past_the_deadline() -> None:
    """While one generation holds the model, another turn's wait ends at its deadline."""
    model = LlamaGenerator(bundled_model_path(), n_threads=1)
    long = GenerationRequest(
        system="You are terse.", user="Count to one hundred.", max_tokens=120, fixed_length=True
    )
    busy = threading.Thread(target=model.generate, args=(long,))
    busy.start()
    time.sleep(0.3)
    asked = time.monotonic()
    waited = model.generate(
        GenerationRequest(system="s", user="Say hi.", max_tokens=8, deadline_s=0.2)
    )
    elapsed = time.monotonic() - asked
    busy.join()
    assert waited.stopped_by_deadline and not waited.text
    assert elapsed < 1.0
