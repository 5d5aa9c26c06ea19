"""Nothing is lost: spooling while the database is away, migrations, concurrent writers, restarts."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import threading
import time
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy import MetaData

from bot.core import DialogueCore
from bot.factory import build_core
from bot.messages import IncomingMessage
from bot.settings import Settings
from bot.storage import ExchangeFilter, SqlConversationLog, open_log
from bot.storage.chain import content_hash, link_hash
from bot.storage.engine import make_engine, migrate
from bot.storage.models import GENESIS_HASH, ExchangeRow
from tests.fakes import ScriptedGenerator
from tests.storage.conftest import (
    TEST_SEALER,
    PrivatePostgres,
    exchange,
    open_sql_log,
    sqlite_url,
)


def _wait_for(predicate: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_locked_database_spools_and_replays_with_the_real_core(
    settings: Settings, generator: ScriptedGenerator, tmp_path: Path
) -> None:
    """The core answers while SQLite is locked; the exchange is written once the lock goes."""
    log = open_sql_log(sqlite_url(tmp_path), tmp_path, busy_ms=100)
    core: DialogueCore = build_core(settings, generator=generator, log=log)
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    reply = core.handle(IncomingMessage(text="Why did Russia oppose NATO enlargement?"))
    assert reply.text and reply.citations
    assert log.spool.pending() == 1
    blocker.execute("ROLLBACK")
    blocker.close()
    _wait_for(lambda: log.spool.pending() == 0)
    [stored] = log.list_exchanges().items
    assert stored.input_text == "Why did Russia oppose NATO enlargement?"
    assert stored.reply_text == reply.text
    log.close()


def test_spool_survives_a_restart_and_is_replayed_at_start_up(tmp_path: Path) -> None:
    log = open_sql_log(sqlite_url(tmp_path), tmp_path, busy_ms=100)
    log.close()  # stop the retry thread so the spool stays on disk, as after a crash
    blocker = sqlite3.connect(tmp_path / "log.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    stopped = SqlConversationLog(
        make_engine(sqlite_url(tmp_path), 100), tmp_path / "spool", sealer=TEST_SEALER
    )
    stopped._stop.set()
    sent = [exchange(f"q{i}") for i in range(3)]
    for item in sent:
        stopped.record(item)
    stopped.close()
    assert stopped.spool.pending() == 3
    blocker.execute("ROLLBACK")
    blocker.close()
    reopened = open_sql_log(sqlite_url(tmp_path), tmp_path)
    assert reopened.spool.pending() == 0
    assert {i.id for i in reopened.list_exchanges().items} == {e.id for e in sent}
    assert all(r.ok for r in reopened.verify())
    reopened.close()


def test_a_record_neither_database_nor_spool_can_take_is_reported_lost_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The caller's reply must not fail, but the loss must be said, with the exchange's id."""
    blocked = tmp_path / "not-a-dir"
    blocked.write_text("a file where the spool directory should be")
    engine = make_engine(f"sqlite:///{tmp_path / 'db' / 'log.db'}")
    (tmp_path / "db" / "log.db").unlink()  # created empty, owner-only, by make_engine
    (tmp_path / "db").rmdir()
    (tmp_path / "db").write_text("a file where the database directory should be")
    log = SqlConversationLog(engine, blocked / "spool", sealer=TEST_SEALER)
    log._stop.set()
    lost = exchange()
    with caplog.at_level(logging.ERROR, logger="bot.storage"):
        log.record(lost)
    log.close()
    reported = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any(lost.id in line and "lost" in line for line in reported), reported
    assert log.spool.pending() == 0  # nothing pretends to be kept


def test_open_log_uses_settings_and_creates_the_sqlite_file(settings: Settings) -> None:
    log = open_log(settings)
    log.record(exchange())
    log.close()
    assert (settings.data_dir / "personabot.db").exists()
    reopened = open_log(settings)
    assert reopened.list_exchanges().total == 1
    reopened.close()


def _store_at_revision_0001(url: str) -> str:
    """Builds a database at revision 0001 and stores one chained row the way that version did."""
    engine = make_engine(url)
    migrate(engine, "0001")
    sent = exchange("from the old version")
    row = ExchangeRow(
        id=sent.id,
        conversation_id=1,
        tenant="guild-1",
        seq=1,
        platform="discord",
        channel="general",
        thread="",
        user_id="u1",
        user_name="n",
        input_text="from the old version",
        reply_text="an old answer",
        refused=False,
        grounded=True,
        moderation=[],
        citations=[],
        retrieved=[{"passage_id": "p-1", "score": 2.5}],
        prompt_version="v0",
        model_id="m",
        options={},
        prompt="",
        retrieval_ms=1.0,
        ttft_ms=2.0,
        generation_ms=3.0,
        total_ms=4.0,
        prompt_tokens=5,
        completion_tokens=6,
        created=datetime(2026, 1, 1),
        stored_at=datetime(2026, 1, 1),
        prev_hash=GENESIS_HASH,
        content_hash="",
        row_hash="",
        hash_version=1,  # what that version hashed
    )
    row.content_hash = content_hash(row)
    row.row_hash = link_hash("guild-1", 1, GENESIS_HASH, row.content_hash)
    with engine.begin() as conn:
        tables = MetaData()
        tables.reflect(conn, only=["conversations", "exchanges", "chain_heads"])
        assert "erased_at" not in tables.tables["exchanges"].c  # really the old schema
        conn.execute(
            tables.tables["conversations"].insert(),
            {
                "id": 1,
                "platform": "discord",
                "tenant": "guild-1",
                "channel": "general",
                "thread": "",
                "started": datetime(2026, 1, 1),
            },
        )
        conn.execute(tables.tables["exchanges"].insert(), row.model_dump(exclude={"erased_at"}))
        conn.execute(
            tables.tables["chain_heads"].insert(),
            {"tenant": "guild-1", "seq": 1, "row_hash": row.row_hash},
        )
    engine.dispose()
    return sent.id


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]
)
def test_upgrade_keeps_existing_logs(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("pg_url")
    old_id = _store_at_revision_0001(url)
    log = open_sql_log(url, tmp_path)  # start-up migrates to head
    kept = log.get_exchange(old_id)
    assert (kept.input_text, kept.retrieved[0].score) == ("from the old version", 2.5)
    log.record(exchange("after the upgrade"))
    log.ban("discord", "guild-1", "u1", "alice")  # a table the old version did not have
    assert log.list_exchanges().total == 2
    unsealed = [r for r in log.verify() if not r.ok]
    assert [(r.table, r.row) for r in unsealed] == [("exchanges", old_id)]
    assert "logs rekey" in (unsealed[0].problem or "")
    assert log.rekey(log.sealer, "admin") >= 3  # seals the old row, checked the old way first
    assert all(r.ok for r in log.verify())
    log.close()


def _write_many(url: str, spool: str, worker: int, count: int) -> None:
    log = SqlConversationLog(make_engine(url), Path(spool), sealer=TEST_SEALER)
    log.start()
    for index in range(count):
        log.record(
            exchange(f"w{worker}-{index}", tenant=f"guild-{index % 2}", user_id=f"w{worker}")
        )
    log.close()


def test_several_processes_share_one_sqlite_file_without_losing_rows(tmp_path: Path) -> None:
    url, workers, each = sqlite_url(tmp_path), 4, 60
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_write_many, args=(url, str(tmp_path / "spool"), w, each))
        for w in range(workers)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=120)
        assert process.exitcode == 0
    log = open_sql_log(url, tmp_path)
    assert log.list_exchanges().total == workers * each
    reports = log.verify()
    chains = [r for r in reports if r.table == "exchanges"]
    assert [r.checked for r in chains] == [workers * each // 2] * 2 and all(r.ok for r in reports)
    log.close()


@pytest.mark.service
def test_postgres_restart_mid_stream_loses_nothing(
    private_postgres: PrivatePostgres, tmp_path: Path, settings: Settings
) -> None:
    """A stream of turns through the real core while PostgreSQL is stopped and started again."""
    log = open_sql_log(private_postgres.url, tmp_path)
    core = build_core(settings, generator=ScriptedGenerator(), log=log)
    sent: list[str] = []
    restarted = threading.Event()
    most_spooled = 0

    def restart() -> None:
        private_postgres.stop()
        time.sleep(1.0)
        private_postgres.start()
        restarted.set()

    for index in range(60):
        if index == 20:
            threading.Thread(target=restart).start()
        exchange_ = core.respond(
            IncomingMessage(text=f"What did Kozyrev think of NATO, take {index}?", tenant="g")
        )
        assert exchange_.reply.text
        sent.append(exchange_.id)
        most_spooled = max(most_spooled, log.spool.pending())
        time.sleep(0.03)
    assert restarted.wait(30)
    assert most_spooled > 0  # the outage really happened while turns were logged
    _wait_for(lambda: log.spool.pending() == 0, timeout=30)
    log.close()
    check = open_sql_log(private_postgres.url, tmp_path)
    stored = [i.id for i in check.iter_exchanges(ExchangeFilter(tenant="g"))]
    assert sorted(stored) == sorted(sent)
    assert [r.ok for r in check.verify() if r.table == "exchanges"] == [True]
    assert all(r.ok for r in check.verify())
    check.close()
