"""The real Bolt app behind its real HTTP endpoint, with Slack's Web API mocked on loopback."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from adapters.slack.app import THINKING
from adapters.slack.delivery import UNDELIVERED
from adapters.slack.render import ANSWER_BLOCK_PREFIX, FEEDBACK_BLOCK_PREFIX
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
    ask_answer,
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
        parts.extend(element["text"] for element in block.get("elements", []) if "text" in element)
    return "\n".join(parts)


def _blocks(payload: dict[str, Any]) -> list[dict[str, Any]]:
    blocks = payload.get("blocks") or []
    return json.loads(blocks) if isinstance(blocks, str) else list(blocks)


def streamed(mock: MockSlack) -> str:
    """The text a streamed answer showed: every appendStream piece, then stopStream's rest."""
    calls = [c for c in mock.calls if c.status == 200]
    pieces = [c.params.get("markdown_text") or "" for c in calls if c.method == "chat.appendStream"]
    pieces += [c.params.get("markdown_text") or "" for c in calls if c.method == "chat.stopStream"]
    return "".join(pieces)


# -- /ask --------------------------------------------------------------------------------------


@pytest.fixture
def slow_slack(
    settings: Settings,
    log: MemoryLog,
    slack_settings: SlackSettings,
    moderation: FakeModeration,
    mock_slack: MockSlack,
) -> Iterator[SlackHarness]:
    """The app over a core whose model, asked to add to each answer, takes 2 s (and adds
    nothing useful)."""

    def slow(_: GenerationRequest) -> str:
        time.sleep(2.0)
        return ""

    with_model = settings.model_copy(update={"model_adds": True})
    core = build_core(with_model, generator=ScriptedGenerator(slow), log=log)
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
    assert answered["unfurl_links"] is False and answered["unfurl_media"] is False
    assert_valid_message(answered)
    exchange = log.exchanges[0]
    assert exchange.message.platform == "slack"
    assert exchange.message.tenant == TEAM_ID
    assert exchange.message.user_name == "alice"
    blocks = _blocks(answered)
    assert blocks[0]["elements"][0] == {
        "type": "mrkdwn",
        "text": f"alice asked: {QUESTION}",
        "verbatim": True,
    }
    assert blocks[1]["block_id"] == ANSWER_BLOCK_PREFIX + exchange.id
    assert blocks[-1]["block_id"] == FEEDBACK_BLOCK_PREFIX + exchange.id
    assert "AI persona of Andrei Kozyrev" in blocks[-2]["elements"][0]["text"]
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

    stop = mock_slack.wait_for("chat.stopStream")[0].params
    start = mock_slack.of("chat.startStream")[0].params
    assert start["thread_ts"] == "1699999999.000100"
    assert start["channel"] == "C1"
    assert (start["recipient_user_id"], start["recipient_team_id"]) == ("U1", TEAM_ID)
    assert not mock_slack.of("chat.postMessage") and not mock_slack.of("chat.update")
    exchange = log.exchanges[0]
    assert exchange.message.text == QUESTION
    assert exchange.message.raw_text == f"<@UBOT> {QUESTION}"
    assert exchange.message.thread == "1699999999.000100"
    assert exchange.message.user_name == "alice"
    assert exchange.message.received_at.timestamp() == pytest.approx(1699999999.0001)
    assert streamed(mock_slack) == exchange.reply.text.replace("&", "&amp;")
    closing = {"text": "answer", "blocks": stop["blocks"]}
    assert_valid_message(closing)
    shown = _texts(closing)
    for citation in exchange.reply.citations:
        assert citation.section.replace("&", "&amp;") in shown


def test_thread_follow_up_needs_no_new_mention(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    slack.event(mention(QUESTION, ts="1699999999.000200"))
    mock_slack.wait_for("chat.stopStream")
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
    mock_slack.wait_for("chat.stopStream", count=2)

    assert [e.message.thread for e in log.exchanges] == ["1699999999.000200"] * 2
    assert log.exchanges[1].message.text == "And what did Yeltsin say about Poland?"
    # A message in a thread the persona is not part of is left alone.
    slack.event({**follow_up, "thread_ts": "1699999999.999999", "ts": "1699999999.000400"})
    time.sleep(0.5)
    assert len(log.exchanges) == 2


def test_direct_message_is_answered_in_its_thread_as_slacks_agent_experience_has_it(
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
    mock_slack.wait_for("chat.stopStream")
    start = mock_slack.of("chat.startStream")[0].params
    assert (start["channel"], start["thread_ts"]) == ("D1", "1699999999.000500")
    assert not mock_slack.of("chat.postMessage") and not mock_slack.of("chat.update")
    message = log.exchanges[0].message
    assert (message.channel, message.thread) == ("D1", "1699999999.000500")
    # A new DM conversation is titled after its question, and its status set then cleared.
    title = mock_slack.wait_for("assistant.threads.setTitle")[0].params
    assert (title["channel_id"], title["thread_ts"], title["title"]) == (
        "D1",
        "1699999999.000500",
        QUESTION,
    )
    set_and_cleared = mock_slack.wait_for("assistant.threads.setStatus", count=2)
    statuses = [c.params["status"] for c in set_and_cleared]
    assert statuses[0] and statuses[-1] == ""
    # A follow-up in that thread continues the conversation, with no new title.
    slack.event(
        {
            "type": "message",
            "channel_type": "im",
            "user": "U2",
            "text": "And what did Yeltsin say about Poland?",
            "ts": "1699999999.000501",
            "thread_ts": "1699999999.000500",
            "channel": "D1",
        }
    )
    mock_slack.wait_for("chat.stopStream", count=2)
    assert log.exchanges[1].message.thread == "1699999999.000500"
    assert len(mock_slack.of("assistant.threads.setTitle")) == 1
    # Should Slack also send app_mention for a mention typed in the DM, it is answered once.
    mentioned = {"type": "app_mention", "user": "U2", "channel": "D1", "ts": "1699999999.000502"}
    slack.event({**mentioned, "text": f"<@UBOT> {QUESTION}", "thread_ts": "1699999999.000500"})
    time.sleep(0.5)
    assert len(log.exchanges) == 2


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
    mock_slack.wait_for("chat.stopStream")
    time.sleep(0.5)
    assert len(mock_slack.of("chat.startStream")) == 1
    assert len(mock_slack.of("chat.stopStream")) == 1
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
    mock_slack.fail("chat.appendStream", 429, retry_after=1)
    slack.event(mention(QUESTION))

    mock_slack.wait_for("chat.stopStream")
    attempts = mock_slack.of("chat.appendStream")
    assert [c.status for c in attempts][:2] == [429, 200]
    assert attempts[1].at - attempts[0].at >= 1.0
    assert streamed(mock_slack) == log.exchanges[0].reply.text.replace("&", "&amp;")
    assert len(log.exchanges) == 1


def test_a_stream_that_breaks_is_ended_and_replaced_by_the_whole_answer(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    mock_slack.fail("chat.appendStream", 500, times=3)  # every retry of the first piece
    slack.event(mention(QUESTION))

    update = mock_slack.wait_for("chat.update")[0].params
    start = mock_slack.of("chat.startStream")[0]
    assert update["ts"] == mock_slack.of("chat.stopStream")[0].params["ts"]
    assert update["ts"] == "1700000000.000001" and start.status == 200
    assert_valid_message(update)
    exchange = log.exchanges[0]
    assert _blocks(update)[0]["block_id"] == ANSWER_BLOCK_PREFIX + exchange.id
    assert _blocks(update)[-1]["block_id"] == FEEDBACK_BLOCK_PREFIX + exchange.id
    assert not mock_slack.of("chat.postMessage")
    deadline = time.monotonic() + 5
    while not moderation.deliveries and time.monotonic() < deadline:
        time.sleep(0.05)
    assert moderation.deliveries[0][3:] == (True, "stream replaced by chat.update")


def test_server_error_storm_is_retried_a_bounded_number_of_times_then_said_in_voice(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    for method in ("chat.startStream", "chat.postMessage"):
        mock_slack.fail(method, 500, times=50)
    slack.event(mention(QUESTION))

    ephemeral = mock_slack.wait_for("chat.postEphemeral", timeout=30)[0].params
    time.sleep(1)
    # The stream and the fallback post: each 1 try + 2 retries, then given up and said so.
    assert [c.status for c in mock_slack.of("chat.startStream")] == [500] * 3
    assert [c.status for c in mock_slack.of("chat.postMessage")] == [500] * 3
    assert UNDELIVERED in _texts(ephemeral)
    assert ephemeral["user"] == "U1"
    exchange_id = log.exchanges[0].id
    assert [d[0] for d in moderation.deliveries] == [exchange_id]
    assert moderation.deliveries[0][3] is False
    assert "chat.postMessage" in moderation.deliveries[0][4]


def test_response_url_is_retried_on_429(slow_slack: SlackHarness, mock_slack: MockSlack) -> None:
    mock_slack.fail("response_url:cmd-U1", 429, retry_after=1)
    slow_slack.command(QUESTION)

    mock_slack.wait_for("response_url:cmd-U1", timeout=15)
    assert [c.status for c in mock_slack.of("response_url:cmd-U1")] == [429, 200]


def test_an_ask_answer_response_url_will_not_take_is_said_in_voice_and_recorded(
    slow_slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    mock_slack.fail("response_url:cmd-U1", 500, times=50)
    slow_slack.command(QUESTION)

    note = mock_slack.wait_for("chat.postEphemeral", timeout=30)[0].params
    assert [c.status for c in mock_slack.of("response_url:cmd-U1")] == [500] * 3
    assert UNDELIVERED in _texts(note)
    assert (note["channel"], note["user"]) == ("C1", "U1")
    exchange_id, _, _, delivered, detail = moderation.deliveries[0]
    assert exchange_id == log.exchanges[0].id
    assert delivered is False and "500" in detail


# -- what the persona says ---------------------------------------------------------------------


def test_pings_typed_into_an_ask_are_not_echoed_as_pings(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    # What Slack sends when a user types "@channel", "@here", "@Bob" and a literal "<!here>".
    raw = f"<!channel> <!here> <@U123|bob> &lt;!here&gt; *{QUESTION}* https://x.example/a"
    answer = ask_answer(slack.command(raw), mock_slack)
    message = log.exchanges[0].message
    assert message.text == f"bob <!here> {QUESTION}"
    assert message.raw_text == raw

    shown = _texts(answer) + answer["text"]
    assert "<" not in shown
    assert "@here" not in shown
    assert "@channel" not in shown
    assert "&lt;!here&gt;" in shown
    asked = _blocks(answer)[0]["elements"][0]
    assert asked["verbatim"] is True
    assert "*" not in asked["text"] and "https://" not in asked["text"]


def test_question_text_markup_is_read_as_plain_words(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    slack.event(
        mention(
            "<@U7> _Why_ do emerging democracies want to join &lt;NATO&gt; <#C9|general>? "
            "<https://nato.int/x|the treaty> <https://example.org>"
        )
    )
    mock_slack.wait_for("chat.stopStream")
    # U7 is named by users.info ("alice" in the mock); the link keeps its label only.
    assert log.exchanges[0].message.text == (
        "alice Why do emerging democracies want to join <NATO> #general? the treaty"
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

    assert first.json()["response_type"] == "in_channel"  # ready at once: in the ack itself
    slow = _texts(second.json())
    assert second.json()["response_type"] == "ephemeral"
    assert "One moment, please" in slow
    assert "Try again in 60 seconds" in slow
    assert "One moment, please" in _texts(ephemeral)
    assert ephemeral["user"] == "U1"
    # Both slow-downs are logged as replies of their own kind.
    assert [e.reply.kind for e in log.exchanges] == ["answer", "rate_limited", "rate_limited"]


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
    finally:
        harness.http.close()
        server.should_exit = True
        thread.join(10)
        bot.close()

    assert "not been switched on in this channel" in _texts(refused.json())
    assert allowed.json()["response_type"] == "in_channel"
    assert [e.message.channel for e in log.exchanges] == ["C7"]


def test_overlong_input_is_refused_before_the_core(
    slack: SlackHarness, log: MemoryLog, generator: ScriptedGenerator
) -> None:
    response = slack.command("Why NATO? " * 400)
    assert "too long" in _texts(response.json())
    assert "1500 characters" in _texts(response.json())
    assert [e.reply.kind for e in log.exchanges] == ["too_long"]
    assert not generator.requests


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


def _submission(form: dict[str, Any], reason: str, user: str = "U5") -> dict[str, Any]:
    """What Slack posts when the report form is submitted."""
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "test"},
        "user": {"id": user, "name": "bob", "team_id": TEAM_ID},
        "view": {
            **form,
            "id": "V1",
            "state": {
                "values": {
                    "reason": {"reason_input": {"type": "plain_text_input", "value": reason}}
                }
            },
        },
    }


def test_report_reply_asks_why_then_flags_the_exchange_once_per_person(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    slack.event(mention(QUESTION))
    stop = mock_slack.wait_for("chat.stopStream")[0].params
    reported = {
        "type": "message",
        "user": BOT_USER_ID,
        "bot_id": BOT_ID,
        "ts": stop["ts"],
        "blocks": stop["blocks"],  # a streamed message ends with the blocks stopStream gave it
    }

    response = slack.shortcut(_report(reported))
    view = mock_slack.wait_for("views.open")[0].params
    assert response.status_code == 200
    assert view["trigger_id"].startswith("13345224609")
    form = view["view"]
    assert form["submit"]["text"] == "Report"  # the confirm step
    assert not moderation.flags  # nothing is sent until the form is submitted

    submitted = slack.shortcut(_submission(form, "The quote is out of context."))
    assert submitted.status_code == 200
    assert "moderator will review" in json.dumps(submitted.json())
    exchange_id = log.exchanges[0].id
    assert moderation.flags == [
        (exchange_id, f"slack:{TEAM_ID}:U5", "The quote is out of context.")
    ]
    again = slack.shortcut(_submission(form, "Still wrong."))
    assert "already reported" in json.dumps(again.json())
    assert len(moderation.flags) == 1  # one open report per person and answer
    other = slack.shortcut(_submission(form, "", user="U6"))
    assert "moderator will review" in json.dumps(other.json())
    assert [f[1] for f in moderation.flags] == [f"slack:{TEAM_ID}:U5", f"slack:{TEAM_ID}:U6"]


def test_report_of_an_ask_answer_is_found_by_its_block_id(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    answer = ask_answer(slack.command(QUESTION), mock_slack)
    reported = {
        "type": "message",
        "bot_id": BOT_ID,
        "ts": "1700000099.000001",
        "blocks": _blocks(answer),
    }
    slack.shortcut(_report(reported))
    form = mock_slack.wait_for("views.open")[0].params["view"]
    slack.shortcut(_submission(form, "Misleading."))
    assert [flag[0] for flag in moderation.flags] == [log.exchanges[0].id]


def test_report_of_someone_elses_message_flags_nothing(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, moderation: FakeModeration
) -> None:
    slack.event(mention(QUESTION))
    stop = mock_slack.wait_for("chat.stopStream")[0].params
    forged = {
        "type": "message",
        "user": "U9",
        "ts": stop["ts"],
        "blocks": [{"type": "section", "block_id": ANSWER_BLOCK_PREFIX + log.exchanges[0].id}],
    }
    slack.shortcut(_report(forged))
    view = mock_slack.wait_for("views.open")[0].params
    assert not moderation.flags
    assert "only report replies that I wrote" in json.dumps(view["view"])
