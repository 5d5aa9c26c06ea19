"""Runs the synchronous core off the event loop, through a bounded queue that adapters share."""

from __future__ import annotations

import asyncio
import contextvars
import time
from concurrent.futures import ThreadPoolExecutor

from bot.core import DialogueCore, TextSink
from bot.messages import Exchange, IncomingMessage


class QueueFullError(Exception):
    """More turns are waiting than the queue accepts; the adapter answers `canned("busy")`."""


# Turns answered at once. The model still takes one at a time (the in-process model's lock, or
# as many as an inference server accepts); the others show their direct answer meanwhile.
DEFAULT_WORKERS = 16


class InferenceQueue:
    """Worker threads for the synchronous core, so every turn's direct answer goes out at once
    while a slow generation holds up only the model's part of the turns behind it."""

    def __init__(
        self, core: DialogueCore, workers: int = DEFAULT_WORKERS, max_waiting: int = 64
    ) -> None:
        self.core = core
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference")
        self._slots = asyncio.BoundedSemaphore(max_waiting)
        self._waiting = 0

    @property
    def depth(self) -> int:
        return self._waiting

    async def respond(self, message: IncomingMessage, on_text: TextSink | None = None) -> Exchange:
        """Answers within the deadline counted from arrival: a turn still waiting for the model
        when it passes is taken out of the queue and answered from the essay alone."""
        deadline = time.monotonic() + self.core.settings.reply_deadline_s
        if self._slots.locked():
            raise QueueFullError()
        async with self._slots:
            self._waiting += 1
            try:
                # The caller's context (its request id) goes with the turn into the worker thread.
                context = contextvars.copy_context()
                job = self._executor.submit(
                    context.run, self.core.respond, message, on_text, deadline
                )
                waiting = asyncio.wrap_future(job)
                try:
                    return await asyncio.wait_for(
                        asyncio.shield(waiting), timeout=max(0.0, deadline - time.monotonic())
                    )
                except TimeoutError:
                    if not job.cancel():
                        return await waiting  # already running: it stops itself at the deadline
                    late = contextvars.copy_context()
                    return await asyncio.to_thread(
                        late.run, self.core.respond, message, on_text, deadline
                    )
            finally:
                self._waiting -= 1

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=False)
