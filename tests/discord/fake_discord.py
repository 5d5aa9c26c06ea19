"""An in-process fake of Discord's REST API and gateway on loopback, recording all the bot sends.

It speaks just enough of the real protocol for an unmodified discord.py client: the gateway
handshake (HELLO, IDENTIFY, READY, GUILD_CREATE, heartbeats, RESUME) with zlib-stream
compression when the client asks for it, and the REST routes a bot uses. Payload shapes come
from the JSON files in `payloads/`, as Discord sends them.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
import re
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

PAYLOADS = Path(__file__).parent / "payloads"
TOKEN = "fake-token.for-tests.only"
API = "/api/v10"
BOT_ID = "1100000000000000001"
GUILD_ID = "1200000000000000001"
GENERAL = "1300000000000000001"
OFF_TOPIC = "1300000000000000002"
THREAD = "1300000000000000003"
HISTORY = "1300000000000000004"
DM_CHANNEL = "1300000000000000009"
ALICE = "1400000000000000001"
MESSAGE_CONTENT_INTENT = 1 << 15
HEARTBEAT_INTERVAL_MS = 41_250
HELLO, IDENTIFY, RESUME, HEARTBEAT, HEARTBEAT_ACK, DISPATCH = 10, 2, 6, 1, 11, 0


def payload(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((PAYLOADS / f"{name}.json").read_text())
    return data


@dataclass
class Request:
    """One REST call the bot made."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    authorization: str | None


@dataclass
class Fault:
    """A scripted failure: the next matching request gets this response instead."""

    method: str
    path: re.Pattern[str]
    status: int
    body: str
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Connection:
    ws: web.WebSocketResponse
    path: str
    compress: str | None
    compressor: Any = None


class FakeDiscord:
    """REST under /api/v10 and a gateway websocket on one aiohttp server bound to 127.0.0.1:0."""

    def __init__(self, token: str = TOKEN, privileged_intents: bool = True) -> None:
        self.token = token
        self.gateway_token = token  # a revoked token can pass REST caches yet fail IDENTIFY
        self.privileged_intents = privileged_intents
        self.requests: list[Request] = []
        self.received: list[dict[str, Any]] = []  # gateway frames from the bot
        self.connections: list[Connection] = []
        self.messages: dict[str, dict[str, Any]] = {}  # every message, by id
        self.faults: list[Fault] = []
        self.session_id = "fake-session-0001"
        self._events: list[dict[str, Any]] = []  # dispatched, for RESUME replay
        self._interaction_channels: dict[str, str] = {}  # interaction id and token -> channel
        self._live: Connection | None = None
        self._ids = itertools.count(1_500_000_000_000_000_000)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # -- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("GET", "/", self._gateway)
        app.router.add_route("GET", "/resume", self._gateway)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        for connection in self.connections:
            if not connection.ws.closed:
                await connection.ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def snowflake(self) -> str:
        return str(next(self._ids))

    # -- gateway ---------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        query = request.query
        if query.get("v") != "10" or query.get("encoding") != "json":
            raise web.HTTPBadRequest(text=f"unsupported gateway query {dict(query)}")
        compress = query.get("compress")
        if compress not in (None, "zlib-stream"):
            raise web.HTTPBadRequest(text=f"unsupported transport compression {compress}")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        connection = Connection(ws, request.path, compress)
        if compress == "zlib-stream":
            connection.compressor = zlib.compressobj()
        self.connections.append(connection)
        await self._send(
            connection, {"op": HELLO, "d": {"heartbeat_interval": HEARTBEAT_INTERVAL_MS}}
        )
        async for message in ws:
            if message.type is not WSMsgType.TEXT:
                continue
            frame = json.loads(message.data)
            self.received.append(frame)
            if frame["op"] == HEARTBEAT:
                await self._send(connection, {"op": HEARTBEAT_ACK})
            elif frame["op"] == IDENTIFY:
                await self._identify(connection, frame["d"])
            elif frame["op"] == RESUME:
                await self._resume(connection, frame["d"])
        if self._live is connection:
            self._live = None
        return ws

    async def _send(self, connection: Connection, data: dict[str, Any]) -> None:
        text = json.dumps(data)
        if connection.compressor is None:
            await connection.ws.send_str(text)
            return
        # zlib-stream: one deflate stream per connection, each message ends with a sync flush.
        compressor = connection.compressor
        chunk = compressor.compress(text.encode()) + compressor.flush(zlib.Z_SYNC_FLUSH)
        await connection.ws.send_bytes(chunk)

    async def _identify(self, connection: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.gateway_token:
            await connection.ws.close(code=4004, message=b"Authentication failed.")
            return
        if not self.privileged_intents and data.get("intents", 0) & MESSAGE_CONTENT_INTENT:
            await connection.ws.close(code=4014, message=b"Disallowed intent(s).")
            return
        ready = payload("ready")
        ready["user"] = payload("user_bot")
        ready["guilds"] = [{"id": GUILD_ID, "unavailable": True}]
        ready["session_id"] = self.session_id
        ready["resume_gateway_url"] = f"ws://127.0.0.1:{self.port}/resume"
        if "shard" in data:
            ready["shard"] = data["shard"]
        self._events.clear()
        self._live = connection
        await self._dispatch_now("READY", ready)
        guild = payload("guild_create")
        await self._dispatch_now("GUILD_CREATE", guild)

    async def _resume(self, connection: Connection, data: dict[str, Any]) -> None:
        if data.get("token") != self.token or data.get("session_id") != self.session_id:
            await self._send(connection, {"op": 9, "d": False})
            return
        self._live = connection
        for event in self._events:
            if event["s"] > (data.get("seq") or 0):
                await self._send(connection, event)
        await self._dispatch_now("RESUMED", {"_trace": ["fake"]})

    async def _dispatch_now(self, name: str, data: dict[str, Any]) -> None:
        event = {"op": DISPATCH, "t": name, "s": len(self._events) + 1, "d": data}
        self._events.append(event)
        if self._live is not None and not self._live.ws.closed:
            await self._send(self._live, event)

    async def dispatch(self, name: str, data: dict[str, Any]) -> None:
        """Sends an event now, or keeps it for the RESUME if the bot is disconnected."""
        if name == "MESSAGE_CREATE":
            self.messages[data["id"]] = data
        await self._dispatch_now(name, data)

    async def drop(self, code: int = 4000) -> None:
        """Closes the live gateway connection as a network failure or server restart would."""
        assert self._live is not None, "no live gateway connection"
        live, self._live = self._live, None
        await live.ws.close(code=code, message=b"dropped by test")

    # -- REST ------------------------------------------------------------------------------------

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        raw = await request.read()
        body: Any = None
        if raw:
            body = json.loads(raw) if request.content_type == "application/json" else raw.decode()
        self.requests.append(
            Request(
                request.method,
                path,
                dict(request.query),
                body,
                request.headers.get("Authorization"),
            )
        )
        for fault in self.faults:
            if fault.method == request.method and fault.path.fullmatch(path):
                self.faults.remove(fault)
                return web.Response(
                    status=fault.status,
                    body=fault.body.encode(),
                    content_type=fault.content_type,
                    headers=fault.headers,
                )
        for method, pattern, handler, authorised in self._routes():
            match = re.fullmatch(pattern, path)
            if method != request.method or match is None:
                continue
            if authorised and request.headers.get("Authorization") != f"Bot {self.token}":
                return _json({"message": "401: Unauthorized", "code": 0}, status=401)
            result = handler(body, *match.groups())
            if result is None:
                return web.Response(status=204)
            return _json(result)
        return _json({"message": "404: Not Found", "code": 0}, status=404)

    def _routes(self) -> list[tuple[str, str, Callable[..., Any], bool]]:
        return [
            ("GET", r"/users/@me", lambda _b: payload("user_bot"), True),
            ("GET", r"/oauth2/applications/@me", lambda _b: payload("application"), True),
            ("GET", r"/gateway", lambda _b: {"url": self.gateway_url}, False),
            ("GET", r"/gateway/bot", self._gateway_bot, True),
            ("PUT", r"/applications/(\d+)/commands", self._sync, True),
            ("PUT", r"/applications/(\d+)/guilds/(\d+)/commands", self._sync, True),
            ("POST", r"/channels/(\d+)/typing", lambda _b, _c: None, True),
            ("POST", r"/channels/(\d+)/messages", self._create_message, True),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback, False),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._follow_up, False),
        ]

    def _gateway_bot(self, _body: Any) -> dict[str, Any]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    def _sync(self, body: list[dict[str, Any]], app_id: str, guild_id: str | None = None) -> Any:
        synced = []
        for command in body:
            entry = {**command, "id": self.snowflake(), "application_id": app_id, "version": "1"}
            entry.setdefault("description", "")
            if guild_id:
                entry["guild_id"] = guild_id
            synced.append(entry)
        return synced

    def _bot_message(self, channel_id: str, body: dict[str, Any]) -> dict[str, Any]:
        message = payload("message_create")
        message.pop("member")
        message.update(
            id=self.snowflake(),
            channel_id=channel_id,
            author=payload("user_bot"),
            content=body.get("content") or "",
            timestamp=time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime()),
            flags=body.get("flags", 0),
        )
        if channel_id == DM_CHANNEL:
            message.pop("guild_id")
        reference = body.get("message_reference")
        if reference:
            message["type"] = 19
            message["message_reference"] = reference
            message["referenced_message"] = self.messages.get(str(reference["message_id"]))
        self.messages[message["id"]] = message
        return message

    def _create_message(self, body: dict[str, Any], channel_id: str) -> dict[str, Any]:
        return self._bot_message(channel_id, body)

    def _callback(self, body: dict[str, Any], interaction_id: str, _token: str) -> dict[str, Any]:
        flags = (body.get("data") or {}).get("flags", 0)
        response: dict[str, Any] = {
            "interaction": {
                "id": interaction_id,
                "type": 2,
                "response_message_loading": body["type"] == 5,
                "response_message_ephemeral": bool(flags & 64),
            }
        }
        if body["type"] == 4:
            channel = self._interaction_channels.get(interaction_id, GENERAL)
            message = self._bot_message(channel, body["data"])
            response["interaction"]["response_message_id"] = message["id"]
            response["resource"] = {"type": 4, "message": message}
        return response

    def _follow_up(self, body: dict[str, Any], app_id: str, token: str) -> dict[str, Any]:
        message = self._bot_message(self._interaction_channels.get(token, GENERAL), body)
        message["webhook_id"] = app_id
        message["application_id"] = app_id
        return message

    # -- what tests look at ----------------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def posted_messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies of messages the bot posted to channels (not interaction responses)."""
        channel = re.escape(channel_id) if channel_id else r"\d+"
        return [r.body for r in self.calls("POST", f"/channels/{channel}/messages")]

    def outgoing(self) -> list[dict[str, Any]]:
        """Every message body the bot sent: channel posts, interaction callbacks, follow-ups."""
        bodies = [r.body for r in self.calls("POST", r"/channels/\d+/messages")]
        bodies += [r.body for r in self.calls("POST", r"/webhooks/\d+/[^/]+")]
        bodies += [
            r.body["data"]
            for r in self.calls("POST", r"/interactions/\d+/[^/]+/callback")
            if r.body.get("data")
        ]
        return bodies

    # -- building incoming events ----------------------------------------------------------------

    def user_message(
        self,
        content: str,
        channel_id: str = GENERAL,
        *,
        mention_bot: bool = False,
        reply_to: str | None = None,
        author_id: str = ALICE,
        bot_author: bool = False,
        dm: bool = False,
    ) -> dict[str, Any]:
        message = payload("message_create")
        message.update(id=self.snowflake(), channel_id=channel_id, content=content)
        message["author"]["id"] = author_id
        if bot_author:
            message["author"]["bot"] = True
        if dm:
            message.pop("guild_id")
            message.pop("member")
        if mention_bot:
            message["content"] = f"<@{BOT_ID}> {content}"
            message["mentions"] = [payload("user_bot")]
        if reply_to is not None:
            message["type"] = 19
            message["message_reference"] = {
                "type": 0,
                "message_id": reply_to,
                "channel_id": channel_id,
                "guild_id": message.get("guild_id"),
            }
            message["referenced_message"] = copy.deepcopy(self.messages[reply_to])
        return message

    def command(
        self,
        name: str,
        options: dict[str, str] | None = None,
        channel_id: str = GENERAL,
        user_id: str = ALICE,
    ) -> dict[str, Any]:
        interaction = payload("interaction_command")
        interaction.update(id=self.snowflake(), token=f"itoken-{self.snowflake()}")
        interaction["channel_id"] = interaction["channel"]["id"] = channel_id
        self._interaction_channels[interaction["id"]] = channel_id
        self._interaction_channels[interaction["token"]] = channel_id
        interaction["member"]["user"]["id"] = user_id
        interaction["data"] = {
            "id": self.snowflake(),
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()],
        }
        return interaction

    def message_command(self, name: str, target_id: str, user_id: str = ALICE) -> dict[str, Any]:
        interaction = self.command(name, user_id=user_id)
        target = copy.deepcopy(self.messages[target_id])
        interaction["data"] = {
            "id": self.snowflake(),
            "name": name,
            "type": 3,
            "target_id": target_id,
            "resolved": {"messages": {target_id: target}},
        }
        return interaction


def _json(data: Any, status: int = 200) -> web.Response:
    """Discord's exact content type: discord.py decodes JSON only when it is "application/json"."""
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type="application/json"
    )


async def until(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Waits for `condition()` to be truthy, polling; fails the test with a clear message otherwise."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = condition()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.01)
