"""Socket Mode's runner stops on SIGTERM (Docker's stop) and SIGINT instead of being killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from bot.settings import PROJECT_ROOT

WAITER = (
    "from adapters.slack.server import wait_for_stop_signal\n"
    "print('waiting', flush=True)\n"
    "wait_for_stop_signal()\n"
    "print('stopped cleanly', flush=True)\n"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_ends_the_wait_so_the_finally_blocks_run(signum: int) -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", WAITER],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "waiting\n"
    time.sleep(1.0)  # the handlers are installed as the wait begins
    child.send_signal(signum)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out == "stopped cleanly\n"
