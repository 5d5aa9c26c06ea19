"""Graceful stops for the runners that uvicorn serves (Slack over HTTP, the dashboard).

uvicorn already stops gracefully on SIGTERM and SIGINT, but afterwards it raises the signal
again with the handler it found; for SIGTERM that is the default one, which kills the process
before any `finally` (the bot's answers in progress, closing the log) can run.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _exit(_signum: int, _frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextmanager
def exit_cleanly_on_sigterm() -> Iterator[None]:
    """While inside, SIGTERM ends in SystemExit(0), so the caller's cleanup runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signals reach the main thread only; a runner in a thread is stopped otherwise
        return
    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
