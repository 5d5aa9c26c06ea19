"""Engines for the log (SQLite by default, PostgreSQL through psycopg 3) and start-up migrations."""

from __future__ import annotations

import contextlib
import os
import sqlite3
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from bot.errors import ConfigurationError

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
DEFAULT_FILE = "personabot.db"
WRITE_OPTION = "personabot_write"
_LOCK_KEY = 0x70657273  # "pers": the advisory lock held while migrating


def database_url(data_dir: Path, url: str | None) -> str:
    """`DATABASE_URL` wins; plain `postgresql://` URLs are steered to psycopg 3."""
    if not url:
        return f"sqlite:///{(data_dir / DEFAULT_FILE).resolve()}"
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url.removeprefix(prefix)
    return url


def make_engine(url: str, busy_timeout_ms: int = 30_000) -> Engine:
    """SQLite gets WAL, a busy timeout and BEGIN IMMEDIATE so several processes append safely."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(f"DATABASE_URL is not a database URL: {url!r}") from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            _private_file(Path(parsed.database))
        engine = create_engine(
            parsed, connect_args={"timeout": busy_timeout_ms / 1000, "check_same_thread": False}
        )
        _serialise_sqlite_writers(engine, busy_timeout_ms)
        return engine
    if parsed.get_backend_name() != "postgresql":
        raise ConfigurationError(
            f"DATABASE_URL must be a postgresql:// or sqlite:// URL, not {parsed.drivername!r}"
        )
    return create_engine(
        parsed,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, busy_timeout_ms // 10_000)},
    )


def _private_file(path: Path) -> None:
    """Creates the database file readable by its owner only (SQLite gives its -wal and -shm
    files the same mode); an existing file is left as its owner set it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _serialise_sqlite_writers(engine: Engine, busy_timeout_ms: int) -> None:
    """pysqlite defers BEGIN; taking the write lock up front avoids deadlocked upgrades."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: sqlite3.Connection, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine, but its SQLite transactions take the write lock when they begin."""
    return engine.execution_options(**{WRITE_OPTION: True})


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Brings the schema to `revision`; existing rows are kept (every migration is additive)."""
    config = alembic_config()
    with writer(engine).begin() as connection:
        if engine.dialect.name == "postgresql":
            # Adapter processes starting together must not race to create the same tables.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
