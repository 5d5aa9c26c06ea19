"""An in-process stand-in for Slack on loopback: Web API, response_url and a Socket Mode websocket.

Besides chat.* and views.open it serves chat streaming (startStream/appendStream/stopStream),
the agent methods (assistant.threads.setStatus/setSuggestedPrompts/setTitle) and
chat.getPermalink with the argument checks and response shapes of Slack's method reference.

It records every call, can answer 429 (with Retry-After) or 5xx on demand, and pushes Socket
Mode envelopes to whichever client connected, recording the acks that come back.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

BOT_TOKEN = "xoxb-test-token"
APP_TOKEN = "xapp-test-token"
TEAM_ID = "T0TEAM"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    at: float = field(default_factory=time.monotonic)


class MockSlack:
    """Serves `/api/<method>`, `/respond/<name>` and `/link` (the Socket Mode websocket)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.acks: list[dict[str, Any]] = []
        self.streams: dict[str, str] = {}  # chat stream ts → "streaming" or "stopped"
        self._refusals: dict[str, str] = {}
        self._failures: dict[str, deque[tuple[int, int | None]]] = {}
        self._ts = itertools.count(1)
        self._changed = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]
        self._runner: web.AppRunner | None = None
        self._websockets: list[web.WebSocketResponse] = []
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> MockSlack:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(5)
        return self

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    async def _serve(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/respond/{name}", self._respond)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def _shutdown(self) -> None:
        for ws in list(self._websockets):
            await ws.close()
        assert self._runner is not None
        await self._runner.cleanup()

    # -- what tests use ---------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/respond/{name}"

    def fail(
        self, method: str, status: int, times: int = 1, retry_after: int | None = None
    ) -> None:
        """The next `times` calls of `method` answer `status` (429s carry Retry-After)."""
        queue = self._failures.setdefault(method, deque())
        queue.extend([(status, retry_after)] * times)

    def refuse(self, method: str, error: str) -> None:
        """Every later call of `method` answers ok: false with this Slack error (e.g. missing_scope)."""
        self._refusals[method] = error

    def of(self, method: str) -> list[Call]:
        with self._changed:
            return [call for call in self.calls if call.method == method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0) -> list[Call]:
        """Blocks until `count` calls of `method` were answered 200; returns them all."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                done = [c for c in self.calls if c.method == method and c.status == 200]
                if len(done) >= count:
                    return done
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"{count} x {method} not seen; calls: {self.summary()}")
                self._changed.wait(left)

    def summary(self) -> list[str]:
        return [f"{c.method}:{c.status}" for c in self.calls]

    def send_envelope(self, envelope: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        """Pushes one Socket Mode envelope to the connected client and waits for its ack."""
        deadline = time.monotonic() + timeout
        while not self._websockets:
            if time.monotonic() > deadline:
                raise AssertionError("no Socket Mode client connected")
            time.sleep(0.02)
        ws = self._websockets[-1]
        asyncio.run_coroutine_threadsafe(ws.send_str(json.dumps(envelope)), self._loop).result(5)
        with self._changed:
            while True:
                for ack in self.acks:
                    if ack.get("envelope_id") == envelope["envelope_id"]:
                        return ack
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"envelope {envelope['envelope_id']} never acked")
                self._changed.wait(left)

    # -- handlers ---------------------------------------------------------------------------

    def _record(self, method: str, params: dict[str, Any], status: int) -> None:
        with self._changed:
            self.calls.append(Call(method, params, status))
            self._changed.notify_all()

    def _planned_failure(self, method: str) -> web.Response | None:
        queue = self._failures.get(method)
        if not queue:
            return None
        status, retry_after = queue.popleft()
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        error = "ratelimited" if status == 429 else "fatal_error"
        return web.json_response({"ok": False, "error": error}, status=status, headers=headers)

    @staticmethod
    async def _params(request: web.Request) -> dict[str, Any]:
        params: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                params.update(json.loads(raw))
            else:
                params.update(parse_qsl(raw.decode()))
        params["_auth"] = request.headers.get("Authorization", "")
        return params

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await self._params(request)
        failure = self._planned_failure(method)
        if failure is not None:
            self._record(method, params, failure.status)
            return failure
        body = self._answer(method, params)
        self._record(method, params, 200)
        return web.json_response(body)

    def _answer(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        token = str(params["_auth"]).removeprefix("Bearer ")
        if method == "apps.connections.open":
            if token != APP_TOKEN:
                return {"ok": False, "error": "invalid_auth"}
            return {"ok": True, "url": f"ws://127.0.0.1:{self.port}/link"}
        if token != BOT_TOKEN:
            return {"ok": False, "error": "invalid_auth"}
        if method in self._refusals:
            return {"ok": False, "error": self._refusals[method]}
        checked = self._check(method, params)
        if checked is not None:
            return checked
        new_message = method.startswith("chat.post") or method == "chat.startStream"
        ts = f"1700000000.{next(self._ts):06d}" if new_message else ""
        if method == "chat.startStream":
            self.streams[ts] = "streaming"
        elif method == "chat.stopStream":
            self.streams[str(params["ts"])] = "stopped"
        answers: dict[str, dict[str, Any]] = {
            "auth.test": {
                "url": "https://test.slack.com/",
                "team": "Test Team",
                "team_id": TEAM_ID,
                "user": "personabot",
                "user_id": BOT_USER_ID,
                "bot_id": BOT_ID,
                "is_enterprise_install": False,
            },
            "chat.postMessage": {"channel": params.get("channel"), "ts": ts},
            "chat.update": {"channel": params.get("channel"), "ts": params.get("ts")},
            "chat.postEphemeral": {"message_ts": ts},
            "views.open": {"view": {"id": "V1"}},
            "chat.startStream": {"channel": params.get("channel"), "ts": ts},
            "chat.appendStream": {"channel": params.get("channel"), "ts": params.get("ts")},
            "chat.stopStream": {
                "channel": params.get("channel"),
                "ts": params.get("ts"),
                "message": {"type": "message", "bot_id": BOT_ID, "ts": params.get("ts")},
            },
            "chat.getPermalink": {
                "channel": params.get("channel"),
                "permalink": "https://test.slack.com/archives/"
                f"{params.get('channel')}/p{str(params.get('message_ts')).replace('.', '')}",
            },
            "assistant.threads.setStatus": {},
            "assistant.threads.setSuggestedPrompts": {},
            "assistant.threads.setTitle": {},
            "users.info": {
                "user": {
                    "id": params.get("user"),
                    "name": "alice",
                    "real_name": "Alice Example",
                    "profile": {"display_name": "alice"},
                }
            },
        }
        if method not in answers:
            return {"ok": False, "error": "unknown_method"}
        return {"ok": True, **answers[method]}

    def _check(self, method: str, params: dict[str, Any]) -> dict[str, Any] | None:
        """Slack's argument errors for the streaming and agent methods, as documented."""

        def missing(*names: str) -> dict[str, Any] | None:
            for name in names:
                if params.get(name) in (None, ""):
                    return {"ok": False, "error": "invalid_arguments", "missing": name}
            return None

        if method == "chat.startStream":
            in_dm = str(params.get("channel", "")).startswith("D")
            needed = (
                ("channel", "thread_ts")
                if in_dm
                else ("channel", "thread_ts", "recipient_user_id", "recipient_team_id")
            )
            return missing(*needed)
        if method in ("chat.appendStream", "chat.stopStream"):
            error = missing("channel", "ts")
            if error:
                return error
            state = self.streams.get(str(params["ts"]))
            if state is None:
                return {"ok": False, "error": "message_not_found"}
            if state != "streaming":
                return {"ok": False, "error": "message_not_in_streaming_state"}
            if method == "chat.appendStream" and not (
                params.get("markdown_text") or params.get("chunks")
            ):
                return {"ok": False, "error": "invalid_arguments", "missing": "markdown_text"}
            return None
        if method == "assistant.threads.setStatus":
            if "status" not in params:
                return {"ok": False, "error": "invalid_arguments", "missing": "status"}
            return missing("channel_id", "thread_ts")
        if method == "assistant.threads.setTitle":
            return missing("channel_id", "thread_ts", "title")
        if method == "assistant.threads.setSuggestedPrompts":
            prompts = params.get("prompts")
            if isinstance(prompts, str):
                prompts = json.loads(prompts)
            if not isinstance(prompts, list) or not 0 < len(prompts) <= 4:
                return {"ok": False, "error": "invalid_arguments", "detail": "1 to 4 prompts"}
            if any(not p.get("title") or not p.get("message") for p in prompts):
                return {"ok": False, "error": "invalid_arguments", "detail": "title and message"}
            return missing("channel_id")
        if method == "chat.getPermalink":
            return missing("channel", "message_ts")
        return None

    async def _respond(self, request: web.Request) -> web.Response:
        name = f"response_url:{request.match_info['name']}"
        params = await self._params(request)
        failure = self._planned_failure(name)
        if failure is not None:
            self._record(name, params, failure.status)
            return failure
        self._record(name, params, 200)
        return web.Response(text="ok")

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._websockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1}))
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                with self._changed:
                    self.acks.append(json.loads(frame.data))
                    self._changed.notify_all()
        self._websockets.remove(ws)
        return ws
