"""The log's behaviour on SQLite and PostgreSQL: storing, querying, moderating, privacy, chain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from bot.conversation_log import ConversationLog, ModerationStore
from bot.storage import (
    ExchangeFilter,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    SqlConversationLog,
)
from bot.storage.models import ERASED, ExchangeRow
from tests.storage.conftest import exchange


def test_implements_both_protocols(store: SqlConversationLog) -> None:
    log: ConversationLog = store
    moderation: ModerationStore = store
    sent = exchange()
    log.record(sent)
    assert moderation.flag(sent.id, "u2", "spam")
    assert not moderation.is_banned("discord", "guild-1", "u1")


def test_stores_every_field_a_moderator_needs(store: SqlConversationLog) -> None:
    sent = exchange("What about the Baltic states?", refused=False, grounded=True)
    store.record(sent)
    shown = store.get_exchange(sent.id)
    assert shown.input_text == "What about the Baltic states?"
    assert shown.reply_text == sent.reply.text
    assert (shown.platform, shown.tenant, shown.channel, shown.user_id) == (
        "discord",
        "guild-1",
        "general",
        "u1",
    )
    assert [(c.passage_id, c.score) for c in shown.citations] == [("p-3", 3.25)]
    assert [(r.passage_id, r.score) for r in shown.retrieved] == [("p-3", 3.25), ("p-9", 1.5)]
    assert shown.moderation[0].check == "input"
    assert (shown.prompt_version, shown.model_id, shown.options) == (
        "abc123",
        "scripted",
        {"temperature": 0.0},
    )
    assert shown.created == sent.message.received_at.replace(microsecond=shown.created.microsecond)
    assert store.get_exchange(sent.id[:8]).id == sent.id


def test_recording_twice_keeps_one_row(store: SqlConversationLog) -> None:
    sent = exchange()
    store.record(sent)
    store.record(sent)
    assert store.list_exchanges().total == 1


def test_filters_and_paging(store: SqlConversationLog) -> None:
    base = datetime(2026, 1, 10, tzinfo=UTC)
    store.record(exchange("first 100% question", received_at=base, refused=True, grounded=False))
    store.record(exchange("second", received_at=base + timedelta(days=1), grounded=False))
    store.record(
        exchange("third", received_at=base + timedelta(days=2), platform="slack", user_id="u2")
    )
    store.record(exchange("fourth", received_at=base + timedelta(days=3), channel="other"))

    def texts(**filters: object) -> list[str]:
        page = store.list_exchanges(ExchangeFilter.model_validate(filters))
        return [item.input_text for item in page.items]

    assert texts() == ["fourth", "third", "second", "first 100% question"]
    assert texts(platform="slack") == ["third"]
    assert texts(user="u2") == ["third"]
    assert texts(channel="other") == ["fourth"]
    assert texts(refused=True) == ["first 100% question"]
    assert texts(grounded=False, refused=False) == ["second"]
    assert texts(since=base + timedelta(days=1), until=base + timedelta(days=3)) == [
        "third",
        "second",
    ]
    assert texts(search="100%") == ["first 100% question"]
    assert texts(search="SECOND") == ["second"]
    page = store.list_exchanges(ExchangeFilter(limit=2, offset=1))
    assert (page.total, [i.input_text for i in page.items]) == (4, ["third", "second"])


def test_flags_notes_and_resolution_are_audited(store: SqlConversationLog) -> None:
    sent = exchange()
    store.record(sent)
    assert store.flag(sent.id, "reporter-7", "rude") is True
    assert store.flag("0" * 32, "reporter-7", "rude") is False
    [flag] = store.flags()
    assert store.list_exchanges(ExchangeFilter(flagged=True)).items[0].open_flags == 1
    store.add_note(flag.id, "alice", "looking into it")
    resolved = store.resolve(flag.id, "alice", "fine on reflection")
    assert resolved.status == "resolved" and resolved.resolved_by == "alice"
    assert [n.text for n in resolved.notes] == ["looking into it", "fine on reflection"]
    assert store.list_exchanges(ExchangeFilter(flagged=True)).total == 0
    assert [(a.actor, a.action) for a in store.audit()] == [
        ("alice", "resolve"),
        ("alice", "note"),
        ("reporter-7", "flag"),
    ]
    with pytest.raises(NotFoundError):
        store.resolve(9999, "alice")


def test_bans(store: SqlConversationLog) -> None:
    assert not store.is_banned("discord", "guild-1", "u9")
    assert store.ban("discord", "guild-1", "u9", "alice", "spam")
    assert not store.ban("discord", "guild-1", "u9", "alice", "spam")
    assert store.is_banned("discord", "guild-1", "u9")
    assert not store.is_banned("discord", "guild-2", "u9")
    assert store.unban("discord", "guild-1", "u9", "alice")
    assert not store.is_banned("discord", "guild-1", "u9")


def test_stats_per_day(store: SqlConversationLog) -> None:
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    store.record(exchange(received_at=day, refused=True, grounded=False))
    store.record(exchange(received_at=day))
    kept = exchange(received_at=day + timedelta(days=1), grounded=False)
    store.record(kept)
    store.flag(kept.id, "u1", "wrong")
    stats = store.stats(since=day - timedelta(days=1), until=day + timedelta(days=2))
    assert [(s.day, s.exchanges, s.refusals, s.ungrounded) for s in stats] == [
        ("2026-03-01", 2, 1, 0),
        ("2026-03-02", 1, 0, 1),
    ]
    assert sum(s.flags for s in store.stats()) == 1


def test_scoped_view_cannot_see_or_touch_other_tenants(store: SqlConversationLog) -> None:
    mine, theirs = exchange(tenant="guild-1"), exchange(tenant="guild-2")
    store.record(mine)
    store.record(theirs)
    store.flag(theirs.id, "x", "y")
    view = store.scoped(["guild-1"])
    assert [i.id for i in view.list_exchanges().items] == [mine.id]
    assert view.list_exchanges(ExchangeFilter(tenant="guild-2")).total == 0
    with pytest.raises(NotFoundError):
        view.get_exchange(theirs.id)
    assert view.flag(theirs.id, "x", "y") is False
    assert view.flags() == []
    assert [r.tenant for r in view.verify()] == ["guild-1"]
    assert all(a.tenant == "guild-1" for a in view.audit())
    with pytest.raises(ForbiddenError):
        view.ban("discord", "guild-2", "u1", "mod")
    assert view.purge(timedelta(microseconds=1), "m") == 1
    assert store.get_exchange(theirs.id).id == theirs.id


def test_purge_removes_old_rows_and_chain_still_verifies(store: SqlConversationLog) -> None:
    old = datetime.now(UTC) - timedelta(days=40)
    for index in range(3):
        store.record(exchange(f"old {index}", received_at=old))
    store.record(exchange("recent"))
    store.flag(store.list_exchanges(ExchangeFilter(search="old 1")).items[0].id, "u", "r")
    assert store.purge(timedelta(days=30), "alice", dry_run=True) == 2
    assert store.list_exchanges().total == 4  # a dry run deletes nothing
    assert store.purge(timedelta(days=30), "alice") == 2  # the flagged one waits for review
    assert [i.input_text for i in store.list_exchanges().items] == ["recent", "old 1"]
    assert [f.status for f in store.flags(status=None)] == ["open"]
    assert all(report.ok for report in store.verify())
    store.record(exchange("after purge"))
    assert all(report.ok for report in store.verify())
    with pytest.raises(InvalidInputError):
        store.purge(timedelta(0), "alice")


def test_erase_user_keeps_flagged_records_anonymised(store: SqlConversationLog) -> None:
    plain, flagged, other = exchange("hi"), exchange("bad words"), exchange("x", user_id="u2")
    for item in (plain, flagged, other):
        store.record(item)
    store.flag(flagged.id, "u2", "abusive")
    store.flag(other.id, "u1", "reported by the erased user")
    store.ban("discord", "guild-1", "u1", "alice", "abuse")
    report = store.erase_user("discord", "u1", "alice")
    assert (report.exchanges_deleted, report.exchanges_anonymised) == (1, 1)
    assert (report.flags_anonymised, report.bans_lifted) == (1, 1)
    assert store.list_exchanges(ExchangeFilter(user="u1")).total == 0
    kept = store.get_exchange(flagged.id)
    assert (kept.user_id, kept.user_name, kept.erased) == (ERASED, ERASED, True)
    assert kept.input_text == "bad words"
    with pytest.raises(NotFoundError):
        store.get_exchange(plain.id)
    assert {f.reporter for f in store.flags()} == {"u2", ERASED}
    assert not any("u1" in a.target for a in store.audit())
    assert all(report.ok for report in store.verify())


def test_redaction_before_storage(store: SqlConversationLog) -> None:
    sent = exchange(
        "mail jane.doe@example.org, call +44 20 7946 0958, key xoxb-123456789012-abcdefghij"
    )
    store.record(sent)
    stored = store.get_exchange(sent.id)
    for secret in ("jane.doe@example.org", "7946 0958", "xoxb-123456789012"):
        assert secret not in stored.input_text
        assert secret not in stored.prompt
    assert "[email redacted]" in stored.input_text
    assert "[phone redacted]" in stored.input_text
    assert "[secret redacted]" in stored.input_text


def _tamper(store: SqlConversationLog, sql: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(sql), params)


@pytest.mark.parametrize("attack", ["edit", "delete", "delete-last", "reorder"])
def test_verify_finds_the_first_broken_link(store: SqlConversationLog, attack: str) -> None:
    sent = [exchange(f"q{i}") for i in range(5)]
    for item in sent:
        store.record(item)
    store.record(exchange("elsewhere", tenant="guild-2"))
    assert all(r.ok for r in store.verify())
    if attack == "edit":
        _tamper(store, "UPDATE exchanges SET reply_text = 'forged' WHERE id = :id", id=sent[2].id)
    elif attack == "delete":
        _tamper(store, "DELETE FROM exchanges WHERE id = :id", id=sent[2].id)
    elif attack == "delete-last":
        _tamper(store, "DELETE FROM exchanges WHERE id = :id", id=sent[4].id)
    else:
        _tamper(store, "UPDATE exchanges SET seq = -1 WHERE id = :id", id=sent[1].id)
        _tamper(store, "UPDATE exchanges SET seq = 2 WHERE id = :id", id=sent[2].id)
        _tamper(store, "UPDATE exchanges SET seq = 3 WHERE id = :id", id=sent[1].id)
    reports = {r.tenant: r for r in store.verify()}
    assert reports["guild-2"].ok
    broken = reports["guild-1"]
    assert not broken.ok
    assert broken.broken_seq == {"edit": 3, "delete": 3, "delete-last": 5, "reorder": 2}[attack]
    assert broken.problem


def test_hash_chain_links_rows_in_tenant_order(store: SqlConversationLog) -> None:
    for index in range(3):
        store.record(exchange(f"q{index}"))
    with Session(store.engine) as session:
        rows = session.exec(select(ExchangeRow).order_by(col(ExchangeRow.seq))).all()
    assert [r.seq for r in rows] == [1, 2, 3]
    assert rows[1].prev_hash == rows[0].row_hash and rows[2].prev_hash == rows[1].row_hash


def test_bad_ids_are_reported_clearly(store: SqlConversationLog) -> None:
    with pytest.raises(InvalidInputError, match="not an exchange id"):
        store.get_exchange("12; DROP TABLE")
    with pytest.raises(NotFoundError):
        store.get_exchange("abcdef123456")
