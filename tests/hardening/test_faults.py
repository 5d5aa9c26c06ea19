"""Injected faults: a broken model file, an absent or locked database, platform error storms,
redelivered events and gateway drops. Each is counted in the hardening summary."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from bot.factory import build_core
from bot.messages import IncomingMessage
from bot.settings import PROJECT_ROOT, Settings, load_settings
from bot.storage import SqlConversationLog, open_log
from bot.storage.engine import make_engine
from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import GENERAL, FakeDiscord, Fault, until
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.hardening.slack_answers import SLACK_WRITES, finished_answers
from tests.hardening.tally import TALLY
from tests.slack.conftest import SlackHarness, mention
from tests.slack.mock_slack import MockSlack

QUESTIONS = [
    "Why do emerging democracies want to join NATO?",
    "What was Clinton's election motto?",
    "What does NATO remain, in your view?",
]
PERSONABOT = PROJECT_ROOT / ".venv" / "bin" / "personabot"


def _wait(predicate: object, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("kind", ["missing", "empty", "not_gguf", "truncated_gguf"])
def test_a_missing_or_corrupt_model_file_is_one_line_and_exit_2(tmp_path: Path, kind: str) -> None:
    model = tmp_path / "model.gguf"
    contents = {"empty": b"", "not_gguf": b"<html>404</html>", "truncated_gguf": b"GGUF\x03\x00"}
    if kind in contents:
        model.write_bytes(contents[kind])
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PERSONABOT_")},
        "PERSONABOT_MODEL_PATH": str(model),
        "PERSONABOT_DATA_DIR": str(tmp_path / "data"),
    }
    with TALLY.fault():
        done = subprocess.run(
            [str(PERSONABOT), "ask", QUESTIONS[0]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            check=False,
            text=True,
            timeout=120,
        )
        assert done.returncode == 2, done.stderr
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("personabot: "), done.stderr
        assert "model" in lines[0].lower() and "Traceback" not in done.stderr
        assert done.stdout == ""


def _sqlite_log(tmp_path: Path, busy_ms: int = 100) -> SqlConversationLog:
    engine = make_engine(f"sqlite:///{tmp_path / 'log.db'}", busy_ms)
    log = SqlConversationLog(engine, tmp_path / "spool", retry_seconds=0.2)
    assert log.start()
    return log


async def test_a_locked_database_spools_while_discord_answers_and_loses_nothing(
    start_bot: BotFactory, fake: FakeDiscord, settings: Settings, tmp_path: Path
) -> None:
    log = _sqlite_log(tmp_path)
    core = build_core(settings, generator=ScriptedGenerator(), log=log)
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    with TALLY.fault():
        blocker.execute("BEGIN EXCLUSIVE")
        await start_bot(with_core=core, user_rate=100)
        for question in QUESTIONS:
            await fake.dispatch("MESSAGE_CREATE", fake.user_message(question, mention_bot=True))
        # Replies stream in; each is finished once its last message carries the vote buttons.
        await until(lambda: len(fake.finished(GENERAL)) == len(QUESTIONS), timeout=30)
        assert log.spool.pending() == len(QUESTIONS)  # every reply went out, every record spooled
        blocker.execute("ROLLBACK")
        await until(lambda: log.spool.pending() == 0, timeout=30)
        stored = log.list_exchanges().items
        TALLY.records(len(QUESTIONS), len(stored))
        assert sorted(s.input_text for s in stored) == sorted(QUESTIONS)
        assert all(report.ok for report in log.verify())
    blocker.close()
    log.close()


def test_an_unreachable_database_spools_and_a_later_start_writes_every_record(
    tmp_path: Path,
) -> None:
    """PostgreSQL down (nothing listens on the port): answers go out, records wait on disk."""
    spool = tmp_path / "spool"
    settings = load_settings(
        data_dir=tmp_path / "data",
        database_url="postgresql://postgres@127.0.0.1:9/none",
        log_spool_dir=spool,
        log_busy_timeout_ms=1000,
    )
    with TALLY.fault():
        down = open_log(settings)
        core = build_core(settings, generator=ScriptedGenerator(), log=down)
        replies = [
            core.handle(IncomingMessage(text=q, channel=f"c{i}")) for i, q in enumerate(QUESTIONS)
        ]
        assert all(r.citations for r in replies)
        down.close()
        assert down.spool.pending() == len(QUESTIONS)
        back = SqlConversationLog(make_engine(f"sqlite:///{tmp_path / 'back.db'}"), spool)
        assert back.start()
        stored = back.list_exchanges().items
        TALLY.records(len(QUESTIONS), len(stored))
        assert sorted(s.input_text for s in stored) == sorted(QUESTIONS)
        back.close()


def test_a_slack_5xx_storm_gets_bounded_retries_and_no_flood(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog, slack_settings: object
) -> None:
    for method in SLACK_WRITES:
        mock_slack.fail(method, 503, times=1000)
    with TALLY.fault():
        for n, question in enumerate(QUESTIONS):
            slack.event(mention(question, ts=f"1700000000.00{n}", user=f"U{n}"))
        _wait(lambda: len(log.exchanges) == len(QUESTIONS))
        time.sleep(4)  # let every retry schedule run out
        retries = 2  # slack_settings.api_retries
        # Per answer and write method: the first try and a fallback, each tried 1 + retries times.
        for method in SLACK_WRITES:
            assert len(mock_slack.of(method)) <= len(QUESTIONS) * 2 * (1 + retries), method
        delivered = [c for c in mock_slack.calls if c.status == 200 and c.method.startswith("chat")]
        # What gets through is the in-voice notice that the answer could not be posted, once each.
        assert {c.method for c in delivered} <= {"chat.postEphemeral"}
        assert len(delivered) <= len(QUESTIONS)


def test_a_slack_event_redelivered_with_retry_headers_is_answered_once(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    with TALLY.fault():
        for n, question in enumerate(QUESTIONS):
            body = slack.event_body(mention(question, ts=f"1700000001.00{n}"), event_id=f"EvR{n}")
            for attempt in range(4):
                headers = {"X-Slack-Retry-Num": str(attempt), "X-Slack-Retry-Reason": "http_error"}
                slack.post(body, "application/json", extra_headers=headers if attempt else None)
        _wait(lambda: finished_answers(mock_slack) >= len(QUESTIONS))
        time.sleep(0.5)
        assert finished_answers(mock_slack) == len(QUESTIONS)
        assert sorted(e.message.text for e in log.exchanges) == sorted(QUESTIONS)


async def test_a_discord_5xx_storm_is_retried_a_bounded_number_of_times(
    start_bot: BotFactory, fake: FakeDiscord, log: MemoryLog
) -> None:
    await start_bot()
    messages = re.compile(rf"/channels/{GENERAL}/messages")
    fake.faults += [Fault("POST", messages, 502, "<html>502</html>", "text/html")] * 50
    with TALLY.fault():
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTIONS[0], mention_bot=True))
        await until(lambda: len(log.exchanges) == 1, timeout=30)
        await until(lambda: len(fake.posted_messages(GENERAL)) >= 5, timeout=60)
        await asyncio.sleep(0.5)
        attempts = len(fake.posted_messages(GENERAL))
        assert attempts <= 6, attempts  # discord.py's 5 tries for the one reply, not a flood
        assert len(fake.faults) == 50 - attempts


async def test_a_gateway_drop_between_messages_gives_one_answer_per_message(
    start_bot: BotFactory, fake: FakeDiscord, log: MemoryLog
) -> None:
    await start_bot(user_rate=100)
    with TALLY.fault():
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTIONS[0], mention_bot=True))
        await until(lambda: len(fake.posted_messages(GENERAL)) == 1)
        await fake.drop(code=4000)
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTIONS[1], mention_bot=True))
        await until(lambda: len(fake.posted_messages(GENERAL)) == 2, timeout=20)
        await fake.drop(code=1006)
        await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTIONS[2], mention_bot=True))
        await until(lambda: len(fake.posted_messages(GENERAL)) == 3, timeout=20)
        await asyncio.sleep(0.5)
        assert len(fake.posted_messages(GENERAL)) == 3
        assert [e.message.text for e in log.exchanges] == QUESTIONS
