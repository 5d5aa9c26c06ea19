"""Arbitrary Unicode (and bytes) at every way in: the core, Slack, Discord and the CLI never crash."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from starlette.testclient import TestClient
from typer.testing import CliRunner

from adapters import cli
from adapters.slack.app import SlackBot
from adapters.slack.server import http_app
from adapters.slack.translate import from_command, from_event, plain_text
from bot.core import DialogueCore
from bot.errors import PersonabotError
from bot.factory import build_core
from bot.messages import IncomingMessage
from bot.serving.ratelimit import Decision
from bot.settings import load_settings
from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import BOT_ID, GENERAL, FakeDiscord, until
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.hardening.tally import TALLY
from tests.slack.conftest import SIGNING_SECRET, SlackHarness
from tests.slack.mock_slack import MockSlack

# Everything Unicode has, including surrogates' neighbours, controls, bidi and private use.
any_text = st.text(st.characters(codec=None, exclude_categories=["Cs"]), max_size=400)
NO_FIXTURE_RESET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
HOSTILE_SCRIPT = "@everyone <!channel> <@1> https://x.example/?utm_source=a ```"


@settings(max_examples=200, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(text=any_text)
def test_core_respond_takes_any_text(core: DialogueCore, text: str) -> None:
    TALLY.fuzz_cases += 1
    exchange = core.respond(IncomingMessage(text=text))
    reply = exchange.reply
    assert reply.text.strip()
    assert reply.grounded or reply.refused or reply.text == core.canned("identity")


@settings(max_examples=200, deadline=None)
@given(
    text=any_text,
    bot=st.sampled_from([None, "UBOT"]),
    event=st.dictionaries(
        st.sampled_from(["channel", "user", "ts", "thread_ts", "channel_type", "team"]),
        st.one_of(st.none(), any_text, st.integers()),
    ),
)
def test_slack_translation_takes_any_text_and_any_event_shape(
    text: str, bot: str | None, event: dict[str, Any]
) -> None:
    TALLY.fuzz_cases += 1
    assert isinstance(plain_text(text, bot), str)
    message = from_event({**event, "text": text}, "T1", "alice", bot)
    assert message.platform == "slack"
    assert from_command({"text": text, **event}).platform == "slack"


def _wait_idle(mock: MockSlack, before: int, timeout: float = 10.0) -> None:
    """Until the worker pool has posted the final answer (an update or a post) for an event."""
    deadline = time.monotonic() + timeout
    while len(mock.of("chat.update")) + len(mock.of("chat.postMessage")) < before + 2:
        assert time.monotonic() < deadline, mock.summary()
        time.sleep(0.01)


@settings(max_examples=40, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(text=any_text)
def test_slack_signed_mentions_with_any_text_are_answered_without_errors(
    slack_bot: SlackBot,
    slack: SlackHarness,
    mock_slack: MockSlack,
    caplog: pytest.LogCaptureFixture,
    text: str,
) -> None:
    """The real HTTP endpoint and Bolt app: a placeholder, then an answer, never an error."""
    TALLY.fuzz_cases += 1
    slack_bot.limiter = _Unlimited()
    caplog.set_level(logging.ERROR)
    before = len(mock_slack.of("chat.update")) + len(mock_slack.of("chat.postMessage"))
    event = {
        "type": "app_mention",
        "user": "U1",
        "text": f"<@UBOT> {text}",
        "ts": f"{time.time():.6f}",
        "channel": "C1",
    }
    response = slack.event(event)
    assert response.status_code == 200
    if plain_text(text, "UBOT") and len(plain_text(text, "UBOT")) <= 4000:
        _wait_idle(mock_slack, before)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


@settings(max_examples=60, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(body=st.binary(max_size=2000))
def test_slack_endpoint_answers_any_signed_bytes_without_a_server_error(
    slack_bot: SlackBot, slack: SlackHarness, body: bytes
) -> None:
    TALLY.fuzz_cases += 1
    client = TestClient(http_app(slack_bot.app))
    stamp = str(int(time.time()))
    signature = SignatureVerifier(SIGNING_SECRET).generate_signature(
        timestamp=stamp, body=body.decode("utf-8", "replace")
    )
    response = client.post(
        "/slack/events",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": stamp,
            "X-Slack-Signature": signature or "",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code < 500


class _Unlimited:
    """A rate limiter that always allows, so fuzzing measures the handlers, not the limits."""

    def hit(self, key: str) -> Decision:
        return Decision(allowed=True, retry_after_s=0.0)


@settings(max_examples=40, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(text=any_text)
async def test_discord_gateway_messages_with_any_text_are_answered_without_errors(
    fake: FakeDiscord,
    start_bot: BotFactory,
    caplog: pytest.LogCaptureFixture,
    text: str,
) -> None:
    """MESSAGE_CREATE through the fake gateway into the real bot's on_message, then to REST."""
    TALLY.fuzz_cases += 1
    if not getattr(fake, "fuzz_bot", None):
        fake.fuzz_bot = await start_bot(user_rate=1_000_000, channel_rate=1_000_000)  # type: ignore[attr-defined]
    caplog.set_level(logging.ERROR)
    before = len(fake.posted_messages(GENERAL))
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(text, mention_bot=True))
    await until(lambda: len(fake.posted_messages(GENERAL)) > before)
    for body in fake.posted_messages(GENERAL)[before:]:
        content = body["content"]
        assert 0 < len(content) <= 2000
        assert "@everyone" not in content and f"<@{BOT_ID}>" not in content
        assert body["allowed_mentions"]["parse"] == []
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


@pytest.fixture
def cli_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> DialogueCore:
    """The CLI with a scripted model (the real one is exercised by the slow tests)."""
    settings = load_settings(data_dir=tmp_path / "data")
    core = build_core(
        settings, generator=ScriptedGenerator([HOSTILE_SCRIPT] * 10_000), log=MemoryLog()
    )
    monkeypatch.setattr(cli, "open_core", lambda *_: core)
    return core


@settings(max_examples=100, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(text=st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=300))
def test_cli_ask_takes_any_text(cli_core: DialogueCore, text: str) -> None:
    TALLY.fuzz_cases += 1
    result = CliRunner().invoke(cli.app, ["ask", "--json", "--", text])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        assert isinstance(result.exception, PersonabotError), repr(result.exception)
        assert "\n" not in str(result.exception).strip()
    else:
        assert result.exit_code == 0, result.output
        json.loads(result.stdout)


@settings(max_examples=100, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(data=st.binary(max_size=3000))
def test_cli_ask_batch_takes_any_bytes(cli_core: DialogueCore, tmp_path: Path, data: bytes) -> None:
    TALLY.fuzz_cases += 1
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(data)
    result = CliRunner().invoke(cli.app, ["ask", "--batch", str(batch)])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert result.exit_code == 0
    for line in result.stdout.splitlines():
        row = json.loads(line)
        assert "text" in row or "error" in row
