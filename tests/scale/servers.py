"""Real servers on loopback for the scale tests: a scripted OpenAI-compatible mock and llama-cpp-python's."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.slack.mock_slack import TEAM_ID


@dataclass
class Scripted:
    """One canned response: a status with headers, or a stream of content pieces (cut = no [DONE])."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    pieces: list[str] = field(default_factory=list)
    cut: bool = False
    delay_s: float = 0.0


class MockOpenAIServer:
    """An aiohttp chat-completions server in its own thread, answering from a script, recording requests."""

    def __init__(
        self, script: list[Scripted] | None = None, default: Scripted | None = None
    ) -> None:
        self.script = list(script or [])
        self.default = default or Scripted(pieces=["Hello", " there."])
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> MockOpenAIServer:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *_: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._complete)
        app.router.add_get("/v1/models", self._models)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def _stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()

    async def _models(self, _: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "mock"}]})

    async def _complete(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        step = self.script.pop(0) if self.script else self.default
        if step.status != 200:
            return web.json_response(
                {"error": {"message": f"scripted {step.status}"}},
                status=step.status,
                headers=step.headers,
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for piece in step.pieces:
            chunk = {"choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}]}
            await response.write(f"data: {json.dumps(chunk)}\n\n".encode())
            await asyncio.sleep(step.delay_s)
        if step.cut:
            assert request.transport is not None
            request.transport.close()
            return response
        done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        await response.write(f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n".encode())
        await response.write_eof()
        return response


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """`python -m llama_cpp.server` with the bundled model, started, killed and restarted on one port."""

    def __init__(self, model: Path, log_dir: Path, *extra_args: str) -> None:
        self.model = model
        self.extra_args = extra_args
        self.port = free_port()
        self.log_dir = log_dir
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout_s: float = 90.0) -> None:
        self.starts += 1
        log = (self.log_dir / f"llama-server-{self.starts}.log").open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable, "-m", "llama_cpp.server",
                "--model", str(self.model),
                "--host", "127.0.0.1", "--port", str(self.port),
                "--n_threads", "1", "--n_ctx", "2048", "--seed", "7",
                *self.extra_args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited early; see {log.name}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/models", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"llama_cpp.server did not come up in {timeout_s}s; see {log.name}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@contextlib.contextmanager
def llama_server(model: Path, log_dir: Path, *extra_args: str) -> Iterator[LlamaServer]:
    server = LlamaServer(model, log_dir, *extra_args)
    server.start()
    try:
        yield server
    finally:
        server.kill()


def slack_event(event_id: str, user: str, channel: str, question: str, ts: str) -> str:
    """An Events API delivery of an app_mention, as Slack sends it."""
    event = {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> {question}",
        "ts": ts,
        "channel": channel,
        "channel_type": "channel",
    }
    return json.dumps(
        {
            "token": "legacy",
            "team_id": TEAM_ID,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": event,
        }
    )


def post_signed(http: httpx.Client, url: str, body: str, secret: str) -> int:
    """Posts a body signed with the app's signing secret; returns the HTTP status."""
    stamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body) or ""
    headers = {
        "Content-Type": "application/json",
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
    }
    return http.post(url, content=body, headers=headers).status_code
