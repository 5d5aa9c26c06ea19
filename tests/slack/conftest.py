"""Fixtures: the mock Slack, the real Bolt app over the real core, and its HTTP endpoint on loopback."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
import uvicorn
from slack_sdk.signature import SignatureVerifier

from adapters.slack.app import SlackBot, web_client
from adapters.slack.server import http_app
from adapters.slack.settings import SlackSettings, load_slack_settings
from bot.core import DialogueCore
from tests.fakes import MemoryLog
from tests.slack.mock_slack import BOT_TOKEN, TEAM_ID, MockSlack

SIGNING_SECRET = "0123456789abcdef0123456789abcdef"
QUESTION = "Why do emerging democracies want to join NATO?"


class ThreadLog(MemoryLog):
    """The test log, able to say whether a conversation (a Slack thread) has any exchange."""

    def has_conversation(self, key: tuple[str, str, str, str]) -> bool:
        return any(exchange.message.conversation_key() == key for exchange in self.exchanges)


class FakeModeration:
    """A ModerationStore over the test's log: flags, votes and deliveries of logged exchanges."""

    def __init__(self, log: MemoryLog) -> None:
        self.log = log
        self.flags: list[tuple[str, str, str]] = []
        self.votes: dict[tuple[str, str], int] = {}
        self.deliveries: list[tuple[str, str | None, str | None, bool, str]] = []
        self.banned: set[tuple[str, str, str]] = set()

    def _known(self, exchange_id: str) -> bool:
        return any(exchange.id == exchange_id for exchange in self.log.exchanges)

    def flag(self, exchange_id: str, reporter: str, reason: str) -> bool:
        if not self._known(exchange_id):
            return False
        self.flags.append((exchange_id, reporter, reason))
        return True

    def vote(self, exchange_id: str, voter: str, value: int) -> bool:
        if not self._known(exchange_id):
            return False
        self.votes[(exchange_id, voter)] = value
        return True

    def record_delivery(
        self,
        exchange_id: str,
        message_id: str | None,
        permalink: str | None,
        delivered: bool,
        detail: str = "",
    ) -> bool:
        self.deliveries.append((exchange_id, message_id, permalink, delivered, detail))
        return self._known(exchange_id)

    def is_banned(self, platform: str, tenant: str, user_id: str) -> bool:
        return (platform, tenant, user_id) in self.banned


class SlackHarness:
    """Sends requests signed as Slack would to the app's real HTTP endpoint."""

    def __init__(self, url: str, mock: MockSlack) -> None:
        self.url = url
        self.mock = mock
        self._events = 0
        self.http = httpx.Client(timeout=10)

    def post(
        self,
        body: str,
        content_type: str,
        *,
        timestamp: int | None = None,
        secret: str = SIGNING_SECRET,
        extra_headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        stamp = str(int(time.time()) if timestamp is None else timestamp)
        signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
        headers = {
            "Content-Type": content_type,
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or "",
            **(extra_headers or {}),
        }
        return self.http.post(self.url, content=body, headers=headers)

    def command(
        self, text: str, user: str = "U1", channel: str = "C1", **extra: str
    ) -> httpx.Response:
        fields = {
            "token": "legacy",
            "team_id": TEAM_ID,
            "team_domain": "test",
            "channel_id": channel,
            "channel_name": "general",
            "user_id": user,
            "user_name": "alice",
            "command": "/ask",
            "text": text,
            "response_url": self.mock.response_url(f"cmd-{user}"),
            "trigger_id": "1.2.3",
            **extra,
        }
        return self.post(urlencode(fields), "application/x-www-form-urlencoded")

    def event_body(self, event: dict[str, Any], event_id: str | None = None) -> str:
        self._events += 1
        return json.dumps(
            {
                "token": "legacy",
                "team_id": TEAM_ID,
                "api_app_id": "A1",
                "type": "event_callback",
                "event_id": event_id or f"Ev{self._events:04d}",
                "event_time": int(time.time()),
                "event": event,
            }
        )

    def event(self, event: dict[str, Any], **kwargs: Any) -> httpx.Response:
        return self.post(self.event_body(event), "application/json", **kwargs)

    def shortcut(self, payload: dict[str, Any]) -> httpx.Response:
        body = urlencode({"payload": json.dumps(payload)})
        return self.post(body, "application/x-www-form-urlencoded")


def ask_answer(response: httpx.Response, mock: MockSlack, user: str = "U1") -> dict[str, Any]:
    """A /ask reply: in the ack itself when it was ready at once, else through response_url."""
    acked = response.json()
    if acked.get("response_type") == "in_channel":
        return dict(acked)
    return mock.wait_for(f"response_url:cmd-{user}", timeout=15)[0].params


def mention(
    text: str, ts: str = "1699999999.000100", user: str = "U1", **extra: Any
) -> dict[str, Any]:
    return {
        "type": "app_mention",
        "user": user,
        "text": f"<@UBOT> {text}",
        "ts": ts,
        "channel": "C1",
        "event_ts": ts,
        **extra,
    }


@pytest.fixture
def log() -> ThreadLog:
    return ThreadLog()


@pytest.fixture
def mock_slack() -> Iterator[MockSlack]:
    mock = MockSlack().start()
    yield mock
    mock.stop()


@pytest.fixture
def moderation(log: MemoryLog) -> FakeModeration:
    return FakeModeration(log)


@pytest.fixture
def slack_settings(mock_slack: MockSlack) -> SlackSettings:
    return load_slack_settings(
        bot_token=BOT_TOKEN,
        signing_secret=SIGNING_SECRET,
        api_base_url=mock_slack.base_url,
        api_retries=2,
        rate_limit_count=20,
    )


def make_bot(core: DialogueCore, settings: SlackSettings, moderation: FakeModeration) -> SlackBot:
    token, secret, _ = settings.credentials()
    return SlackBot(core, settings, moderation, web_client(settings, token), signing_secret=secret)


@pytest.fixture
def slack_bot(
    core: DialogueCore, slack_settings: SlackSettings, moderation: FakeModeration
) -> Iterator[SlackBot]:
    bot = make_bot(core, slack_settings, moderation)
    yield bot
    bot.close()


def serve(bot: SlackBot) -> tuple[str, uvicorn.Server, threading.Thread]:
    """The production HTTP endpoint (Starlette + uvicorn) on 127.0.0.1, a free port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(http_app(bot.app), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    return f"http://127.0.0.1:{port}/slack/events", server, thread


@pytest.fixture
def slack(slack_bot: SlackBot, mock_slack: MockSlack) -> Iterator[SlackHarness]:
    url, server, thread = serve(slack_bot)
    harness = SlackHarness(url, mock_slack)
    yield harness
    harness.http.close()
    server.should_exit = True
    thread.join(10)
