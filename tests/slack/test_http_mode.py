"""The real Bolt app behind its real HTTP endpoint, with Slack's Web API mocked on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.slack.app import ANSWER_BLOCK_PREFIX, THINKING
from adapters.slack.settings import SlackSettings
from bot.answering.generation import GenerationRequest
from bot.factory import build_core
from bot.settings import Settings
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.slack.block_kit import assert_valid_message
from tests.slack.conftest import (
    QUESTION,
    FakeModeration,
    SlackHarness,
    make_bot,
    mention,
    serve,
)
from tests.slack.mock_slack import BOT_ID, BOT_USER_ID, TEAM_ID, MockSlack

pytestmark = pytest.mark.timeout(60)


def _texts(payload: dict[str, Any]) -> str:
    """Every text the blocks of one posted message would show."""
    blocks = payload.get("blocks") or []
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    parts: list[str] = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts.extend(element["text"] for element in block.get("elements", []))
    return "\n".join(parts)


def _blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = payload.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


# -- /ask --------------------------------------------------------------------------------------


@pytest.fixture
def slow_slack(
    settings: Settings,
    log: MemoryLog,
    slack_settings: SlackSettings,
    moderation: FakeModeration,
    mock_slack: MockSlack,
) -> Iterator[SlackHarness]:
    """The app over a core whose model takes 2 s per answer (and says nothing useful)."""

    def slow(_: GenerationRequest) -> str:
        time.sleep(2.0)
        return ""

    core = build_core(settings, generator=ScriptedGenerator(slow), log=log)
    bot = make_bot(core, slack_settings, moderation)
    url, server, thread = serve(bot)
    harness = SlackHarness(url, mock_slack)
    yield harness
    harness.http.close()
    server.should_exit = True
    thread.join(10)
    bot.close()


def test_ask_is_acked_fast_while_the_model_is_slow_then_answered(
    slow_slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    started = time.perf_counter()
    response = slow_slack.command(QUESTION)
    acked_after = time.perf_counter() - started

    assert response.status_code == 200
    assert acked_after < 1.0
    ack = response.json()
    assert ack.get("response_type", "ephemeral") == "ephemeral"
    assert THINKING in _texts(ack)
    assert not mock_slack.of("response_url:cmd-U1")

    answered = mock_slack.wait_for("response_url:cmd-U1", timeout=15)[0].params
    assert answered["response_type"] == "in_channel"
    assert_valid_message(answered)
    exchange = log.exchanges[0]
    assert exchange.message.platform == "slack"
    assert exchange.message.tenant == TEAM_ID
    assert exchange.message.user_name == "alice"
    blocks = _blocks(answered)
    assert f"alice asked: {QUESTION}" in blocks[0]["elements"][0]["text"]
    assert blocks[1]["block_id"] == ANSWER_BLOCK_PREFIX + exchange.id
    assert exchange.reply.citations
    context_texts = [b["elements"][0]["text"] for b in blocks if b["type"] == "context"]
    assert any(exchange.reply.citations[0].section in text for text in context_texts)


def test_empty_ask_gets_help_without_the_model(
    slack: SlackHarness, log: MemoryLog, generator: ScriptedGenerator
) -> None:
    response = slack.command("   ")

    assert response.status_code == 200
    shown = _texts(response.json())
    assert "AI persona" in shown
    assert "/ask your question" in shown
    assert not log.exchanges
    assert not generator.requests


# -- mentions, threads and DMs ----------------------------------------------------------------


def test_mention_is_answered_in_its_thread_with_citations(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    response = slack.event(mention(QUESTION, ts="1699999999.000100"))
    assert response.status_code == 200

    placeholder = mock_slack.wait_for("chat.postMessage")[0].params
    assert placeholder["thread_ts"] == "1699999999.000100"
    assert placeholder["channel"] == "C1"
    update = mock_slack.wait_for("chat.update")[0].params
    assert update["ts"] == "1700000000.000001"
    assert_valid_message(update)
    exchange = log.exchanges[0]
    assert exchange.message.text == QUESTION
    assert exchange.message.thread == "1699999999.000100"
    assert exchange.message.user_name == "alice"
    shown = _texts(update)
    for citation in exchange.reply.citations:
        assert citation.section.replace("&", "&amp;") in shown


def test_thread_follow_up_needs_no_new_mention(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    slack.event(mention(QUESTION, ts="1699999999.000200"))
    mock_slack.wait_for("chat.update")
    follow_up = {
        "type": "message",
        "channel_type": "channel",
        "user": "U1",
        "text": "And what did Yeltsin say about Poland?",
        "ts": "1699999999.000300",
        "thread_ts": "1699999999.000200",
        "channel": "C1",
    }
    slack.event(follow_up)
    mock_slack.wait_for("chat.update", count=2)

    assert [e.message.thread for e in log.exchanges] == ["1699999999.000200"] * 2
    assert log.exchanges[1].message.text == "And what did Yeltsin say about Poland?"
    # A message in a thread the persona is not part of is left alone.
    slack.event({**follow_up, "thread_ts": "1699999999.999999", "ts": "1699999999.000400"})
    time.sleep(0.5)
    assert len(log.exchanges) == 2


def test_direct_message_is_answered_in_the_dm(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    slack.event(
        {
            "type": "message",
            "channel_type": "im",
            "user": "U2",
            "text": QUESTION,
            "ts": "1699999999.000500",
            "channel": "D1",
        }
    )
    update = mock_slack.wait_for("chat.update")[0].params
    placeholder = mock_slack.of("chat.postMessage")[0].params
    assert placeholder["channel"] == "D1"
    assert "thread_ts" not in placeholder
    assert update["channel"] == "D1"
    assert log.exchanges[0].message.channel == "D1"
    assert log.exchanges[0].message.thread is None


def test_an_event_delivered_four_times_is_answered_once(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    body = slack.event_body(mention(QUESTION, ts="1699999999.000600"), event_id="EvRETRY")
    statuses = [slack.post(body, "application/json").status_code]
    for attempt in (1, 2, 3):
        statuses.append(
            slack.post(
                body,
                "application/json",
                extra_headers={
                    "X-Slack-Retry-Num": str(attempt),
                    "X-Slack-Retry-Reason": "http_timeout",
                },
            ).status_code
        )
    assert statuses == [200, 200, 200, 200]
    mock_slack.wait_for("chat.update")
    time.sleep(0.5)
    assert len(mock_slack.of("chat.update")) == 1
    assert len(mock_slack.of("chat.postMessage")) == 1
    assert len(log.exchanges) == 1


# -- signatures --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "headers", "expected"),
    [
        ({"secret": "f" * 32}, None, 401),
        ({"age": 301}, None, 401),
        ({"age": -301}, None, 401),
        ({}, {"X-Slack-Request-Timestamp": "yesterday"}, 400),
        ({}, {"X-Slack-Request-Timestamp": "-17"}, 400),
        ({}, {"X-Slack-Signature": "v0=deadbeef"}, 401),
    ],
)
def test_unsigned_or_stale_requests_are_refused_and_never_handled(
    slack: SlackHarness,
    mock_slack: MockSlack,
    log: MemoryLog,
    kwargs: dict[str, Any],
    headers: dict[str, str] | None,
    expected: int,
) -> None:
    if "age" in kwargs:
        kwargs = {"timestamp": int(time.time()) - kwargs["age"]}
    body = slack.event_body(mention(QUESTION))
    response = slack.post(body, "application/json", extra_headers=headers, **kwargs)
    command = slack.post(
        "text=hi&command=%2Fask",
        "application/x-www-form-urlencoded",
        extra_headers=headers,
        **kwargs,
    )

    assert response.status_code == expected
    assert command.status_code == expected
    time.sleep(0.3)
    assert not log.exchanges
    assert [c.method for c in mock_slack.calls] == ["auth.test"]


@pytest.mark.parametrize("missing", ["X-Slack-Signature", "X-Slack-Request-Timestamp", "both"])
def test_missing_signature_headers_are_refused(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, missing: str
) -> None:
    headers = {"Content-Type": "application/json"}
    if missing != "X-Slack-Signature":
        headers["X-Slack-Signature"] = "v0=abc"
    if missing != "X-Slack-Request-Timestamp":
        headers["X-Slack-Request-Timestamp"] = str(int(time.time()))
    response = slack.http.post(
        slack.url, content=slack.event_body(mention(QUESTION)), headers=headers
    )

    assert response.status_code == 401
    time.sleep(0.3)
    assert not log.exchanges
    assert [c.method for c in mock_slack.calls] == ["auth.test"]


def test_a_signed_but_malformed_body_is_a_400(slack: SlackHarness, log: MemoryLog) -> None:
    response = slack.post("{not json", "application/json")
    assert 400 <= response.status_code < 500
    assert not log.exchanges


# -- Web API failures --------------------------------------------------------------------------


def test_rate_limited_post_is_retried_after_retry_after(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    mock_slack.fail("chat.update", 429, retry_after=1)
    slack.event(mention(QUESTION))

    calls = mock_slack.wait_for("chat.update")
    attempts = mock_slack.of("chat.update")
    assert [c.status for c in attempts] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert calls[0].params["blocks"]
    assert len(log.exchanges) == 1


def test_server_error_storm_is_retried_a_bounded_number_of_times(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    mock_slack.fail("chat.postMessage", 500, times=50)
    slack.event(mention(QUESTION))

    deadline = time.monotonic() + 20
    while len(log.exchanges) < 1 or len(mock_slack.of("chat.postMessage")) < 6:
        assert time.monotonic() < deadline, mock_slack.summary()
        time.sleep(0.1)
    time.sleep(4)
    # Placeholder and fallback answer post: each 1 try + 2 retries, then given up.
    assert [c.status for c in mock_slack.of("chat.postMessage")] == [500] * 6
    assert not mock_slack.of("chat.update")


def test_response_url_is_retried_on_429(slack: SlackHarness, mock_slack: MockSlack) -> None:
    mock_slack.fail("response_url:cmd-U1", 429, retry_after=1)
    slack.command(QUESTION)

    mock_slack.wait_for("response_url:cmd-U1", timeout=15)
    assert [c.status for c in mock_slack.of("response_url:cmd-U1")] == [429, 200]


# -- what the persona says ---------------------------------------------------------------------


def test_pings_typed_into_an_ask_are_not_echoed_as_pings(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    # What Slack sends when a user types "@channel", "@here", "@Bob" and a literal "<!here>".
    slack.command(f"<!channel> <!here> <@U123|bob> &lt;!here&gt; {QUESTION}")
    answer = mock_slack.wait_for("response_url:cmd-U1")[0].params
    assert log.exchanges[0].message.text.startswith("@channel @here @bob <!here> Why")

    shown = _texts(answer) + answer["text"]
    assert "<" not in shown
    assert "@here" not in shown
    assert "@channel" not in shown
    assert "&lt;!here&gt;" in shown
    assert "@\u2060channel" in shown


def test_question_text_markup_is_read_as_plain_words(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    slack.event(mention("Why do emerging democracies want to join &lt;NATO&gt; <#C9|general>?"))
    mock_slack.wait_for("chat.update")
    assert log.exchanges[0].message.text == (
        "Why do emerging democracies want to join <NATO> #general?"
    )


# -- controls ----------------------------------------------------------------------------------


def test_rate_limited_user_is_told_to_slow_down_in_voice(
    core: Any,
    slack_settings: SlackSettings,
    moderation: FakeModeration,
    mock_slack: MockSlack,
    log: MemoryLog,
) -> None:
    settings = slack_settings.model_copy(update={"rate_limit_count": 1, "rate_limit_seconds": 60})
    bot = make_bot(core, settings, moderation)
    url, server, thread = serve(bot)
    harness = SlackHarness(url, mock_slack)
    try:
        first = harness.command(QUESTION)
        second = harness.command("What was Clinton's election motto?")
        harness.event(mention(QUESTION))
        ephemeral = mock_slack.wait_for("chat.postEphemeral")[0].params
    finally:
        harness.http.close()
        server.should_exit = True
        thread.join(10)
        bot.close()

    assert THINKING in _texts(first.json())
    slow = _texts(second.json())
    assert "One moment, please" in slow
    assert "Try again in 60 seconds" in slow
    assert "One moment, please" in _texts(ephemeral)
    assert ephemeral["user"] == "U1"
    assert len(log.exchanges) == 1


def test_banned_user_is_ignored(
    slack: SlackHarness, mock_slack: MockSlack, moderation: FakeModeration, log: MemoryLog
) -> None:
    moderation.banned.add(("slack", TEAM_ID, "U666"))
    command = slack.command(QUESTION, user="U666")
    slack.event(mention(QUESTION, user="U666"))
    slack.event(
        {
            "type": "message",
            "channel_type": "im",
            "user": "U666",
            "text": QUESTION,
            "ts": "1699999999.000700",
            "channel": "D6",
        }
    )
    time.sleep(0.5)

    assert command.status_code == 200
    assert not command.content
    assert not log.exchanges
    assert [c.method for c in mock_slack.calls] == ["auth.test"]


def test_channels_outside_the_allow_list_get_a_notice_only(
    core: Any,
    slack_settings: SlackSettings,
    moderation: FakeModeration,
    mock_slack: MockSlack,
    log: MemoryLog,
) -> None:
    settings = slack_settings.model_copy(update={"allowed_channels": frozenset({"C7"})})
    bot = make_bot(core, settings, moderation)
    url, server, thread = serve(bot)
    harness = SlackHarness(url, mock_slack)
    try:
        refused = harness.command(QUESTION, channel="C1")
        allowed = harness.command(QUESTION, channel="C7")
        mock_slack.wait_for("response_url:cmd-U1")
    finally:
        harness.http.close()
        server.should_exit = True
        thread.join(10)
        bot.close()

    assert "not been switched on in this channel" in _texts(refused.json())
    assert THINKING in _texts(allowed.json())
    assert [e.message.channel for e in log.exchanges] == ["C7"]


def test_overlong_input_is_refused_before_the_core(
    slack: SlackHarness, log: MemoryLog, generator: ScriptedGenerator
) -> None:
    response = slack.command("Why NATO? " * 400)
    assert "too long" in _texts(response.json())
    assert "1500 characters" in _texts(response.json())
    assert not log.exchanges


# -- Report reply ------------------------------------------------------------------------------


def _report(message: dict[str, Any], user: str = "U5") -> dict[str, Any]:
    return {
        "type": "message_action",
        "callback_id": "report_reply",
        "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        "team": {"id": TEAM_ID, "domain": "test"},
        "user": {"id": user, "name": "bob"},
        "channel": {"id": "C1", "name": "general"},
        "message_ts": message.get("ts"),
        "message": message,
        "response_url": "http://127.0.0.1:9/unused",
    }


def test_report_reply_flags_the_exchange(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    slack.event(mention(QUESTION))
    update = mock_slack.wait_for("chat.update")[0].params
    reported = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": update["ts"]}

    response = slack.shortcut(_report(reported))
    view = mock_slack.wait_for("views.open")[0].params

    assert response.status_code == 200
    assert moderation.flags == [
        (log.exchanges[0].id, f"slack:{TEAM_ID}:U5", moderation.flags[0][2])
    ]
    assert view["trigger_id"].startswith("13345224609")
    assert "moderator will review" in json.dumps(view["view"])


def test_report_of_an_ask_answer_is_found_by_its_block_id(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    slack.command(QUESTION)
    answer = mock_slack.wait_for("response_url:cmd-U1")[0].params
    reported = {
        "type": "message",
        "bot_id": BOT_ID,
        "ts": "1700000099.000001",
        "blocks": _blocks(answer),
    }
    slack.shortcut(_report(reported))
    mock_slack.wait_for("views.open")
    assert [flag[0] for flag in moderation.flags] == [log.exchanges[0].id]


def test_report_of_someone_elses_message_flags_nothing(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    slack.event(mention(QUESTION))
    update = mock_slack.wait_for("chat.update")[0].params
    forged = {
        "type": "message",
        "user": "U9",
        "ts": update["ts"],
        "blocks": [{"type": "section", "block_id": ANSWER_BLOCK_PREFIX + log.exchanges[0].id}],
    }
    slack.shortcut(_report(forged))
    view = mock_slack.wait_for("views.open")[0].params
    assert not moderation.flags
    assert "only report replies that I wrote" in json.dumps(view["view"])
