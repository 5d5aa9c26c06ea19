"""What the dashboard added to the storage layer, on SQLite and PostgreSQL: redaction (audited,
scrubbed from later prompts, chain still verifies), per-day latency percentiles, accounts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlmodel import Session, select

from bot.messages import Exchange, IncomingMessage, Reply, Timings, Trace
from bot.storage import InvalidInputError, NotFoundError, SqlConversationLog
from bot.storage.accounts import ModeratorAccounts
from bot.storage.models import Moderator
from tests.storage.conftest import PG_ADMIN, open_sql_log
from tests.web.conftest import FAST_HASHER


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlConversationLog]:
    """A fresh log on SQLite, or in a throwaway schema of the shared PostgreSQL (fails if down)."""
    schema = f"w_{uuid.uuid4().hex[:12]}"
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'log.db'}"
    else:
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/test?options=-csearch_path%3D{schema}"
    log = open_sql_log(url, tmp_path)
    yield log
    log.close()
    if request.param == "postgresql":
        with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def _turn(text: str, reply: str, when: datetime, total_ms: float = 100.0,
          prompt: str = "", tenant: str = "g1") -> Exchange:  # fmt: skip
    return Exchange(
        message=IncomingMessage(text=text, platform="discord", tenant=tenant, channel="c",
                                user_id="u1", user_name="Una", received_at=when),
        reply=Reply(text=reply, grounded=True, timings=Timings(total_ms=total_ms)),
        trace=Trace(prompt_version="v1", model_id="m", prompt=prompt or f"system\n{text}"),
    )  # fmt: skip


def test_redaction_is_audited_scrubs_later_prompts_and_keeps_the_chain(
    store: SqlConversationLog,
) -> None:
    start = datetime(2026, 3, 1, 12, tzinfo=UTC)
    first = _turn("my cousin Ivan lives at 5 Elm Road", "I cannot speak to that.", start)
    second = _turn(
        "and what about NATO?",
        "Enlargement came later.",
        start + timedelta(minutes=1),
        prompt="history: my cousin Ivan lives at 5 Elm Road / I cannot speak to that.\nnow: NATO",
    )
    other_channel = _turn("my cousin Ivan lives at 5 Elm Road", "ok", start, tenant="g2")
    for exchange in (first, second, other_channel):
        store.record(exchange)

    redacted = store.redact(first.id, "mod-1", "address")
    assert (redacted.input_text, redacted.reply_text, redacted.prompt) == ("[redacted]",) * 3
    assert redacted.redacted_by == "mod-1"
    later = store.get_exchange(second.id)
    assert "Ivan" not in later.prompt
    assert later.prompt == "history: [redacted] / [redacted]\nnow: NATO"
    assert later.input_text == "and what about NATO?"  # only the quoted text went
    assert store.get_exchange(other_channel.id).input_text.startswith("my cousin")  # other tenant
    entry = store.audit(limit=1)[0]
    assert (entry.action, entry.actor, entry.target) == ("redact", "mod-1", first.id)
    assert entry.detail["scrubbed_prompts"] == [second.id]
    assert "Ivan" not in str(entry.detail)
    assert all(report.ok for report in store.verify())
    listed = store.list_exchanges().items
    assert {item.id: item.redacted_by for item in listed}[first.id] == "mod-1"
    with pytest.raises(InvalidInputError):
        store.redact(first.id, "mod-1")
    with pytest.raises(NotFoundError):
        store.scoped(["g2"]).redact(second.id, "mod-2")
    assert store.purge(timedelta(days=1), "ops") == 3  # purge removes redaction records too


def test_latency_percentiles_per_day(store: SqlConversationLog) -> None:
    day_one = datetime(2026, 3, 1, 9, tzinfo=UTC)
    for index, ms in enumerate([10, 20, 30, 40, 50, 60, 70, 80, 90, 1000]):
        store.record(_turn(f"q{index}", "a", day_one + timedelta(minutes=index), total_ms=ms))
    store.record(_turn("late", "a", day_one + timedelta(days=1), total_ms=5))
    store.record(_turn("other tenant", "a", day_one, total_ms=99_999, tenant="g2"))
    days = store.scoped(["g1"]).latency()
    assert [(d.day, d.exchanges, d.p50_ms, d.p95_ms) for d in days] == [
        ("2026-03-01", 10, 50.0, 1000.0),
        ("2026-03-02", 1, 5.0, 5.0),
    ]
    assert store.latency(since=day_one + timedelta(hours=12))[0].day == "2026-03-02"


def test_accounts_keep_only_argon2_hashes(store: SqlConversationLog) -> None:
    accounts = ModeratorAccounts(store.engine, FAST_HASHER)
    created = accounts.add("mod.one", "long enough secret", ["g1", "g1", "g2"], False, "ops")
    assert created.tenants == ["g1", "g2"]
    with Session(store.engine) as db:
        stored = db.exec(select(Moderator)).one()
    assert stored.password_hash.startswith("$argon2id$")
    assert "long enough secret" not in stored.password_hash
    assert accounts.authenticate("mod.one", "long enough secret") == created
    assert accounts.authenticate("mod.one", "wrong secret!!") is None
    assert accounts.authenticate("nobody", "long enough secret") is None
    for name, password, tenants in (
        ("mod.one", "another secret", ["g1"]),  # taken
        ("mod two", "another secret", ["g1"]),  # a space
        ("mod3", "short", ["g1"]),
        ("mod4", "another secret", []),  # no tenant and not an admin
    ):
        with pytest.raises(InvalidInputError):
            accounts.add(name, password, tenants, False, "ops")
    token, _csrf = accounts.start_session(created, timedelta(hours=1))
    assert accounts.session(token, timedelta(minutes=5)) is not None
    accounts.remove("mod.one", "ops")
    assert accounts.session(token, timedelta(minutes=5)) is None
    assert [e.action for e in store.audit(limit=2)] == ["moderator-remove", "moderator-add"]
    assert store.scoped(["g1"]).audit() == []  # account changes are for admins' eyes
