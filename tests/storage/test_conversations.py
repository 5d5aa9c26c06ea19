"""Conversations are threads shared by their participants, read back from the log: after a
restart, and on two workers sharing one database, a follow-up is understood the same way."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.core import DialogueCore
from bot.factory import build_core
from bot.messages import IncomingMessage
from bot.serving.ops import CountingLog, Metrics
from bot.settings import load_settings
from bot.storage.log import SqlConversationLog
from tests.fakes import ScriptedGenerator
from tests.storage.conftest import open_sql_log, sqlite_url

FIRST = "What did Primakov tell Yeltsin about the Partnership for Peace?"
FOLLOW_UP = "Did the Russian press believe him?"
ANSWER = "press increasingly shared this suspicion"


def worker(tmp_path: Path, log: SqlConversationLog, name: str) -> DialogueCore:
    """A process of its own in all but address space: its own core, its own memory cache."""
    return build_core(load_settings(data_dir=tmp_path / name), ScriptedGenerator(), log=log)


def in_thread(text: str, user: str, when: datetime | None = None) -> IncomingMessage:
    return IncomingMessage(
        text=text,
        platform="slack",
        tenant="T1",
        channel="C1",
        thread="1700000000.000100",
        user_id=user,
        received_at=when or datetime.now(UTC),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return (
        sqlite_url(tmp_path)
        if request.param == "sqlite"
        else str(request.getfixturevalue("pg_url"))
    )


def test_a_second_user_follows_up_on_another_worker(url: str, tmp_path: Path) -> None:
    first_log, second_log = open_sql_log(url, tmp_path / "a"), open_sql_log(url, tmp_path / "b")
    try:
        one, two = worker(tmp_path, first_log, "one"), worker(tmp_path, second_log, "two")
        assert not one.handle(in_thread(FIRST, "U-alice")).refused
        reply = two.handle(in_thread(FOLLOW_UP, "U-bob"))
        assert ANSWER in reply.text
        assert two.memory.history(in_thread("", "U-bob").conversation_key()) != []
    finally:
        first_log.close()
        second_log.close()


def test_a_follow_up_after_a_restart_is_read_from_the_log(url: str, tmp_path: Path) -> None:
    log = open_sql_log(url, tmp_path / "before")
    worker(tmp_path, log, "before").handle(in_thread(FIRST, "U-alice"))
    log.close()
    reopened = open_sql_log(url, tmp_path / "after")
    try:
        reply = worker(tmp_path, reopened, "after").handle(in_thread(FOLLOW_UP, "U-carol"))
        assert ANSWER in reply.text
    finally:
        reopened.close()


def test_a_conversation_goes_stale_after_a_quiet_period(tmp_path: Path) -> None:
    log = open_sql_log(sqlite_url(tmp_path), tmp_path)
    try:
        core = worker(tmp_path, log, "w")
        long_ago = datetime.now(UTC) - timedelta(hours=3)
        core.handle(in_thread(FIRST, "U-alice", when=long_ago))
        assert core.history(in_thread(FOLLOW_UP, "U-bob")) == []
        assert core.history(in_thread(FOLLOW_UP, "U-bob", when=long_ago + timedelta(minutes=5)))
    finally:
        log.close()


def test_forget_hides_the_conversation_from_later_turns(tmp_path: Path) -> None:
    log = open_sql_log(sqlite_url(tmp_path), tmp_path)
    try:
        core = worker(tmp_path, log, "w")
        core.handle(in_thread(FIRST, "U-alice"))
        assert core.forget(in_thread("", "U-alice"))
        assert core.history(in_thread(FOLLOW_UP, "U-alice")) == []
    finally:
        log.close()


def test_forgetting_holds_on_every_worker_and_after_a_restart(url: str, tmp_path: Path) -> None:
    first_log, second_log = open_sql_log(url, tmp_path / "a"), open_sql_log(url, tmp_path / "b")
    try:
        one, two = worker(tmp_path, first_log, "one"), worker(tmp_path, second_log, "two")
        one.handle(in_thread(FIRST, "U-alice"))
        assert two.history(in_thread(FOLLOW_UP, "U-bob"))
        assert one.forget(in_thread("", "U-alice"))
        assert two.history(in_thread(FOLLOW_UP, "U-bob")) == []
        later = worker(tmp_path, second_log, "restarted")
        assert later.history(in_thread(FOLLOW_UP, "U-bob")) == []
        later.handle(in_thread(FIRST, "U-bob"))
        assert len(one.history(in_thread(FOLLOW_UP, "U-alice"))) == 1
    finally:
        first_log.close()
        second_log.close()


def test_a_runners_counting_log_still_reads_the_history_from_the_log(tmp_path: Path) -> None:
    """The platform runners wrap the log to count exchanges; the wrapper must not cut the core
    off from the conversation history the log holds."""
    log = open_sql_log(sqlite_url(tmp_path), tmp_path)
    try:
        worker(tmp_path, log, "other").handle(in_thread(FIRST, "U-alice"))
        counted = build_core(
            load_settings(data_dir=tmp_path / "w"),
            ScriptedGenerator(),
            log=CountingLog(log, Metrics()),
        )
        assert ANSWER in counted.handle(in_thread(FOLLOW_UP, "U-bob")).text
        assert counted.forget(in_thread("", "U-bob"))
        assert worker(tmp_path, log, "restarted").history(in_thread(FOLLOW_UP, "U-carol")) == []
    finally:
        log.close()
