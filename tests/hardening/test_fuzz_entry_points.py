"""Arbitrary Unicode (and bytes) at every way in: the core, Slack, Discord and the CLI never crash."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier
from starlette.testclient import TestClient

from adapters import cli
from adapters.slack.app import SlackBot
from adapters.slack.server import http_app
from adapters.slack.translate import from_command, from_event, plain_text
from bot.core import DialogueCore
from bot.factory import build_core
from bot.knowledge import Knowledge
from bot.messages import IncomingMessage, Reply
from bot.serving.ratelimit import Decision
from bot.settings import Settings, load_settings
from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import BOT_ID, GENERAL, FakeDiscord, until
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.hardening.injection import public_texts
from tests.hardening.markers import hostile_generator, smuggled
from tests.hardening.slack_answers import finished_answers
from tests.hardening.tally import TALLY
from tests.slack.conftest import SIGNING_SECRET, SlackHarness
from tests.slack.mock_slack import MockSlack

# Everything Unicode has, including surrogates' neighbours, controls, bidi and private use.
any_text = st.text(st.characters(codec=None, exclude_categories=["Cs"]), max_size=400)
# Noise around real essay questions, so that many cases get past the input check to the model.
ESSAY_QUESTIONS = [
    "Why do emerging democracies want to join NATO?",
    "What was Clinton's election motto?",
    "What did Gephardt say about Yeltsin's message?",
]
noisy_question = st.builds(
    lambda before, question, after: f"{before} {question} {after}",
    any_text,
    st.sampled_from(ESSAY_QUESTIONS),
    st.text(max_size=40),
)
NO_FIXTURE_RESET = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


@pytest.fixture
def hostile_core(settings: Settings, log: MemoryLog) -> DialogueCore:
    """The model's addition on (it is off by default), so the hostile model is asked."""
    model_on = settings.model_copy(update={"model_adds": True})
    return build_core(model_on, generator=hostile_generator(), log=log)


def test_the_hostile_model_is_reached_and_its_words_stopped(hostile_core: DialogueCore) -> None:
    """The control for the fuzz test below: real questions reach the hostile model."""
    generator = hostile_core.generator
    assert isinstance(generator, ScriptedGenerator)
    for question in ESSAY_QUESTIONS:
        reply = hostile_core.respond(IncomingMessage(text=question, channel=question)).reply
        assert reply.citations and smuggled(reply) == [], reply.text
    assert len(generator.requests) == len(ESSAY_QUESTIONS)


@settings(max_examples=200, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(text=st.one_of(any_text, noisy_question))
def test_core_respond_takes_any_text(
    hostile_core: DialogueCore, knowledge: Knowledge, text: str
) -> None:
    """Whatever arrives, the model's smuggled words never reach the user, and a reply is either
    one of the persona's own texts or carries the passages it rests on."""
    TALLY.fuzz_cases += 1
    reply = hostile_core.respond(IncomingMessage(text=text)).reply
    assert reply.text.strip()
    assert smuggled(reply) == [], reply.text
    assert reply.citations or reply.text in public_texts(hostile_core, knowledge), reply.text


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
    """Until the worker pool has finished the answer (a stream stopped or an edit) for an event."""
    deadline = time.monotonic() + timeout
    while finished_answers(mock) < before + 1:
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
    before = finished_answers(mock_slack)
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
    """The CLI with a hostile scripted model (the real one is exercised by the slow tests)."""
    settings = load_settings(data_dir=tmp_path / "data", model_adds=True)
    core = build_core(settings, generator=hostile_generator(), log=MemoryLog())
    monkeypatch.setattr(cli, "open_core", lambda *_: core)
    return core


def _run_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str
) -> tuple[int, str, str]:
    """`personabot ARGS` through `main()`, the real entry point: (exit status, stdout, stderr).
    Any exception other than the exit escapes and fails the test."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["personabot", *args])
    with pytest.raises(SystemExit) as ended:
        cli.main()
    out, err = capsys.readouterr()
    code = ended.value.code
    return code if isinstance(code, int) else (0 if code is None else 1), out, err


@settings(max_examples=100, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(
    text=st.one_of(
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=300),
        st.sampled_from(ESSAY_QUESTIONS),
    )
)
def test_cli_ask_takes_any_text(
    cli_core: DialogueCore,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    text: str,
) -> None:
    """Either one JSON reply and status 0, or one line on stderr and status 2; nothing else."""
    TALLY.fuzz_cases += 1
    code, out, err = _run_main(monkeypatch, capsys, "ask", "--json", "--", text)
    if code == 0:
        reply = Reply.model_validate_json(out)
        assert smuggled(reply) == [], reply.text
        assert err == ""
    else:
        assert code == 2, (code, err)
        assert out == "" and err.startswith("personabot: ") and err.count("\n") == 1, err


@settings(max_examples=100, deadline=None, suppress_health_check=NO_FIXTURE_RESET)
@given(data=st.binary(max_size=3000))
def test_cli_ask_batch_takes_any_bytes(
    cli_core: DialogueCore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    data: bytes,
) -> None:
    """Every non-blank line gets a JSON row (a reply or an error naming the line), in order."""
    TALLY.fuzz_cases += 1
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(data)
    code, out, err = _run_main(monkeypatch, capsys, "ask", "--batch", str(batch))
    assert (code, err) == (0, "")
    lines = data.decode("utf-8", "replace").splitlines()
    expected = [n for n, line in enumerate(lines, 1) if line.strip()]
    rows = [json.loads(line) for line in out.splitlines()]
    assert len(rows) == len(expected)
    for number, row in zip(expected, rows, strict=True):
        if "error" in row:
            assert row["line"] == number
        else:
            assert smuggled(Reply.model_validate(row)) == [], row["text"]
