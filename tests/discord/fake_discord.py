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
    at: float = field(default_factory=time.monotonic)  # when it arrived


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
        self.commands: dict[str, list[str]] = {}  # scope ("global" or a guild id) -> names
        self.deleted: list[str] = []  # ids of messages the bot deleted
        self.close_codes: list[int | None] = []  # how each gateway connection was closed
        self._query: dict[str, str] = {}  # of the REST call being handled
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
        self.close_codes.append(ws.close_code)
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
            self._query = dict(request.query)
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
            ("GET", r"/channels/(\d+)/messages/(\d+)", self._get_message, True),
            ("GET", r"/channels/(\d+)/messages", self._history, True),
            ("PATCH", r"/channels/(\d+)/messages/(\d+)", self._edit_message, True),
            ("DELETE", r"/channels/(\d+)/messages/(\d+)", self._delete_message, True),
            ("POST", r"/interactions/(\d+)/([^/]+)/callback", self._callback, False),
            ("POST", r"/webhooks/(\d+)/([^/]+)", self._follow_up, False),
            ("PATCH", r"/webhooks/(\d+)/([^/]+)/messages/(\d+)", self._edit_webhook, False),
            ("DELETE", r"/webhooks/(\d+)/([^/]+)/messages/(\d+)", self._delete_webhook, False),
        ]

    def _gateway_bot(self, _body: Any) -> dict[str, Any]:
        limit = {"total": 1000, "remaining": 999, "reset_after": 0, "max_concurrency": 1}
        return {"url": self.gateway_url, "shards": 1, "session_start_limit": limit}

    def _sync(self, body: list[dict[str, Any]], app_id: str, guild_id: str | None = None) -> Any:
        self.commands[guild_id or "global"] = [c["name"] for c in body]
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
            components=_components(body.get("components") or []),
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

    def _get_message(self, _body: Any, channel_id: str, message_id: str) -> Any:
        message = self.messages.get(message_id)
        if message is None or message["channel_id"] != channel_id or message_id in self.deleted:
            raise web.HTTPNotFound(
                text=json.dumps({"message": "Unknown Message", "code": 10008}),
                content_type="application/json",
            )
        return message

    def _history(self, _body: Any, channel_id: str) -> list[dict[str, Any]]:
        """The channel's messages, newest first (the bot asks for at most `limit`)."""
        found = [
            m
            for i, m in self.messages.items()
            if m["channel_id"] == channel_id and i not in self.deleted
        ]
        return sorted(found, key=lambda m: int(m["id"]), reverse=True)[
            : int(self._query.get("limit", "50"))
        ]

    def _edit_message(self, body: dict[str, Any], channel_id: str, message_id: str) -> Any:
        message = self._get_message(None, channel_id, message_id)
        if "content" in body:
            message["content"] = body["content"]
        if "components" in body:
            message["components"] = _components(body["components"])
        message["edited_timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
        return message

    def _delete_message(self, _body: Any, channel_id: str, message_id: str) -> None:
        self._get_message(None, channel_id, message_id)
        self.deleted.append(message_id)

    def _edit_webhook(self, body: dict[str, Any], _app: str, _token: str, message_id: str) -> Any:
        message = self.messages[message_id]
        return self._edit_message(body, message["channel_id"], message_id)

    def _delete_webhook(self, _body: Any, _app: str, _token: str, message_id: str) -> None:
        self.deleted.append(message_id)

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
        interaction = self._interaction_channels.get(f"id-of:{token}")
        if interaction:
            message["interaction_metadata"] = {
                "id": interaction,
                "type": 2,
                "user": payload("message_create")["author"],
                "authorizing_integration_owners": {"0": GUILD_ID},
            }
        return message

    # -- what tests look at ----------------------------------------------------------------------

    def calls(self, method: str, pattern: str) -> list[Request]:
        return [r for r in self.requests if r.method == method and re.fullmatch(pattern, r.path)]

    def posted_messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """Bodies of messages the bot posted to channels (not interaction responses)."""
        channel = re.escape(channel_id) if channel_id else r"\d+"
        return [r.body for r in self.calls("POST", f"/channels/{channel}/messages")]

    def edits(self, message_id: str | None = None) -> list[Request]:
        """PATCHes of messages the bot made (channel messages and interaction follow-ups)."""
        target = message_id or r"\d+"
        return [
            r
            for r in self.requests
            if r.method == "PATCH"
            and re.fullmatch(rf"/(channels|webhooks)/.+/messages/{target}", r.path)
        ]

    def bot_messages(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """The bot's messages as they read now (after edits), oldest first, deleted ones left out."""
        return [
            m
            for i, m in self.messages.items()
            if m["author"]["id"] == BOT_ID
            and i not in self.deleted
            and (channel_id is None or m["channel_id"] == channel_id)
        ]

    def finished(self, channel_id: str | None = None) -> list[dict[str, Any]]:
        """The last message of each reply the bot has finished: the one carrying the buttons."""
        return [m for m in self.bot_messages(channel_id) if m.get("components")]

    def whole_reply(self, last: dict[str, Any]) -> str:
        """A finished reply's text: its messages (each a reply to the one before) joined."""
        parts = [last["content"]]
        while last.get("message_reference"):
            earlier = self.messages.get(str(last["message_reference"]["message_id"]))
            if earlier is None or earlier["author"]["id"] != BOT_ID:
                break
            parts.insert(0, earlier["content"])
            last = earlier
        return "\n\n".join(parts)

    def outgoing(self) -> list[dict[str, Any]]:
        """Every message body the bot sent: channel posts, interaction callbacks, follow-ups."""
        bodies = [r.body for r in self.calls("POST", r"/channels/\d+/messages")]
        bodies += [r.body for r in self.calls("POST", r"/webhooks/\d+/[^/]+")]
        bodies += [r.body for r in self.edits()]
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
        mention_roles: tuple[str, ...] = (),
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
        if mention_roles:
            message["mention_roles"] = list(mention_roles)
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
        self._interaction_channels[f"id-of:{interaction['token']}"] = interaction["id"]
        interaction["member"]["user"]["id"] = user_id
        interaction["data"] = {
            "id": self.snowflake(),
            "name": name,
            "type": 1,
            "options": [{"name": k, "type": 3, "value": v} for k, v in (options or {}).items()],
        }
        return interaction

    def click(self, message_id: str, custom_id: str, user_id: str = ALICE) -> dict[str, Any]:
        """A button press on one of the bot's messages, as INTERACTION_CREATE type 3."""
        interaction = self.command(
            "unused", channel_id=self.messages[message_id]["channel_id"], user_id=user_id
        )
        interaction["type"] = 3
        interaction["message"] = copy.deepcopy(self.messages[message_id])
        interaction["data"] = {"custom_id": custom_id, "component_type": 2}
        return interaction

    def edited(self, message: dict[str, Any], content: str) -> dict[str, Any]:
        """A MESSAGE_UPDATE for one of the users' messages, with its new content."""
        updated = copy.deepcopy(message)
        updated["content"] = content
        updated["edited_timestamp"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000+00:00", time.gmtime())
        self.messages[updated["id"]] = updated
        return updated

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


def _components(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Components as Discord echoes them: every button with an id (discord.py reads them back)."""
    echoed = copy.deepcopy(rows)
    for row in echoed:
        for child in row.get("components", []):
            child.setdefault("id", 0)
    return echoed


def _json(data: Any, status: int = 200) -> web.Response:
    """Discord's exact content type: discord.py decodes JSON only when it is "application/json"."""
    return web.Response(
        status=status, body=json.dumps(data).encode(), content_type="application/json"
    )


async def answered(fake: FakeDiscord, channel_id: str | None = None, count: int = 1) -> Any:
    """Waits until `count` replies are finished (buttons attached) and returns their last messages."""
    return await until(
        lambda: len(fake.finished(channel_id)) >= count and fake.finished(channel_id)
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
