"""Socket Mode: the real SocketModeHandler connects to the mock's websocket and answers a mention."""

from __future__ import annotations

import time

import pytest
from slack_bolt.adapter.socket_mode import SocketModeHandler

from adapters.slack.app import SlackBot, web_client
from adapters.slack.settings import load_slack_settings
from bot.core import DialogueCore
from tests.fakes import MemoryLog
from tests.slack.conftest import QUESTION, FakeModeration, mention
from tests.slack.mock_slack import APP_TOKEN, BOT_TOKEN, TEAM_ID, MockSlack

pytestmark = pytest.mark.timeout(60)


def _envelope(envelope_id: str, event_id: str, retry: int = 0) -> dict[str, object]:
    return {
        "envelope_id": envelope_id,
        "type": "events_api",
        "accepts_response_payload": False,
        "retry_attempt": retry,
        "retry_reason": "timeout" if retry else "",
        "payload": {
            "team_id": TEAM_ID,
            "api_app_id": "A1",
            "type": "event_callback",
            "event_id": event_id,
            "event_time": int(time.time()),
            "event": mention(QUESTION, ts="1699999999.000900"),
        },
    }


def test_socket_mode_answers_a_mention_once(
    core: DialogueCore,
    moderation: FakeModeration,
    mock_slack: MockSlack,
    log: MemoryLog,
) -> None:
    settings = load_slack_settings(
        bot_token=BOT_TOKEN, app_token=APP_TOKEN, api_base_url=mock_slack.base_url
    )
    token, secret, app_token = settings.credentials()
    assert secret is None and app_token == APP_TOKEN
    bot = SlackBot(core, settings, moderation, web_client(settings, token))
    handler = SocketModeHandler(bot.app, app_token, web_client=bot.app.client)
    handler.connect()  # type: ignore[no-untyped-call]
    try:
        first = mock_slack.send_envelope(_envelope("env-1", "EvSOCK"))
        update = mock_slack.wait_for("chat.stopStream")[0].params
        retried = mock_slack.send_envelope(_envelope("env-2", "EvSOCK", retry=1))
        time.sleep(0.5)
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        bot.close()

    assert first["envelope_id"] == "env-1"
    assert retried["envelope_id"] == "env-2"
    assert mock_slack.of("apps.connections.open")[0].params["_auth"] == f"Bearer {APP_TOKEN}"
    placeholder = mock_slack.of("chat.startStream")[0].params
    assert placeholder["thread_ts"] == "1699999999.000900"
    assert update["blocks"]
    assert len(mock_slack.of("chat.stopStream")) == 1
    assert len(log.exchanges) == 1
    assert log.exchanges[0].message.tenant == TEAM_ID


def test_socket_mode_ask_is_answered_in_the_ack_payload(
    core: DialogueCore, moderation: FakeModeration, mock_slack: MockSlack, log: MemoryLog
) -> None:
    settings = load_slack_settings(
        bot_token=BOT_TOKEN, app_token=APP_TOKEN, api_base_url=mock_slack.base_url
    )
    token, _, app_token = settings.credentials()
    assert app_token is not None
    bot = SlackBot(core, settings, moderation, web_client(settings, token))
    handler = SocketModeHandler(bot.app, app_token, web_client=bot.app.client)
    handler.connect()  # type: ignore[no-untyped-call]
    command = {
        "token": "legacy",
        "team_id": TEAM_ID,
        "channel_id": "C1",
        "channel_name": "general",
        "user_id": "U1",
        "user_name": "alice",
        "command": "/ask",
        "text": "What is the capital of Peru?",
        "response_url": mock_slack.response_url("cmd-U1"),
        "trigger_id": "1.2.3",
    }
    envelope = {
        "envelope_id": "env-ask",
        "type": "slash_commands",
        "accepts_response_payload": True,
        "payload": command,
    }
    try:
        ack = mock_slack.send_envelope(envelope)
    finally:
        handler.close()  # type: ignore[no-untyped-call]
        bot.close()

    assert ack["payload"]["response_type"] == "ephemeral"  # a refusal: only the asker sees it
    assert log.exchanges[0].reply.kind == "out_of_scope"
    assert not mock_slack.of("response_url:cmd-U1")
