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


SERVER = (
    "import uvicorn\n"
    "from adapters.stopping import exit_cleanly_on_sigterm\n"
    "async def app(scope, receive, send):\n"
    "    assert scope['type'] == 'lifespan'\n"
    "    while True:\n"
    "        message = await receive()\n"
    "        if message['type'] == 'lifespan.startup':\n"
    "            print('serving', flush=True)\n"
    "            await send({'type': 'lifespan.startup.complete'})\n"
    "        else:\n"
    "            await send({'type': 'lifespan.shutdown.complete'})\n"
    "            return\n"
    "try:\n"
    "    with exit_cleanly_on_sigterm():\n"
    "        uvicorn.run(app, host='127.0.0.1', port=0, log_level='error')\n"
    "finally:\n"
    "    print('cleaned up', flush=True)\n"
)


def test_sigterm_to_a_uvicorn_runner_lets_its_cleanup_run_and_exits_0() -> None:
    """uvicorn re-raises SIGTERM after its graceful stop; the runner's `finally` must still run."""
    child = subprocess.Popen(
        [sys.executable, "-c", SERVER],
        cwd=PROJECT_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline() == "serving\n"
    time.sleep(0.5)
    child.send_signal(signal.SIGTERM)
    out, err = child.communicate(timeout=30)
    assert child.returncode == 0, err
    assert out == "cleaned up\n"
