"""Logs on a temporary SQLite file and on the real PostgreSQL (one throwaway schema per test)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from bot.messages import (
    Citation,
    Exchange,
    IncomingMessage,
    Reply,
    RetrievedPassage,
    Trace,
    Verdict,
)
from bot.storage import Redactor, SqlConversationLog
from bot.storage.chain import Sealer
from bot.storage.engine import make_engine

TEST_SEALER = Sealer(b"a key the tests keep outside the database")
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def exchange(
    text: str = "What did Kozyrev say about NATO?",
    *,
    tenant: str = "guild-1",
    platform: str = "discord",
    channel: str = "general",
    user_id: str = "u1",
    refused: bool = False,
    grounded: bool = True,
    received_at: datetime | None = None,
) -> Exchange:
    message = IncomingMessage(
        text=text,
        platform=platform,
        tenant=tenant,
        channel=channel,
        user_id=user_id,
        user_name=f"name-{user_id}",
        received_at=received_at or datetime.now(UTC),
    )
    reply = Reply(
        text="I argued that enlargement should be gradual.",
        citations=[Citation(passage_id="p-3", section="Intro", quote="gradual", passage="…")],
        refused=refused,
        grounded=grounded,
        moderation=[Verdict(check="input", passed=True, detail="question")],
    )
    trace = Trace(
        prompt_version="abc123",
        model_id="scripted",
        options={"temperature": 0.0},
        retrieved=[
            RetrievedPassage(passage_id="p-3", score=3.25),
            RetrievedPassage(passage_id="p-9", score=1.5),
        ],
        prompt=f"system\n{text}",
    )
    return Exchange(message=message, reply=reply, trace=trace)


def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'log.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh schema in the shared `test` database; fails (never skips) if PostgreSQL is down."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def open_sql_log(
    url: str, tmp_path: Path, redact: bool = True, busy_ms: int = 30_000
) -> SqlConversationLog:
    log = SqlConversationLog(
        make_engine(url, busy_ms),
        tmp_path / "spool",
        Redactor() if redact else None,
        retry_seconds=0.2,
        sealer=TEST_SEALER,
    )
    assert log.start()
    return log


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlConversationLog]:
    """The same log API on both backends."""
    url = sqlite_url(tmp_path) if request.param == "sqlite" else request.getfixturevalue("pg_url")
    log = open_sql_log(url, tmp_path)
    yield log
    log.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PrivatePostgres:
    """A throwaway PostgreSQL 15 cluster on a free loopback port, so a test may restart it
    without disturbing the shared server other tests use."""

    def __init__(self) -> None:
        self.bin = Path(
            subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, check=True
            ).stdout.strip()
        )
        self.root = Path(tempfile.mkdtemp(prefix="personabot-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
            self._as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run(
            [*self._as_user, str(self.bin / tool), *args],
            check=True,
            capture_output=True,
            cwd=self.root,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl",
            "-D",
            str(self.data),
            "-o",
            options,
            "-l",
            str(self.root / "log"),
            "-w",
            "start",
        )

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def cleanup(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    server.start()
    deadline = time.monotonic() + 20
    while True:
        try:
            psycopg.connect(server.url.replace("+psycopg", ""), connect_timeout=2).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    yield server
    server.cleanup()
