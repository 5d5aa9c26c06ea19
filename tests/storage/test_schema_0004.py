"""Revision 0004 on SQLite and PostgreSQL: reply kinds, raw text, delivery, votes, claims, filters."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import column, create_engine, insert, table, text
from sqlmodel import Session, select

from bot.messages import ReplyKind
from bot.storage import ExchangeFilter, InvalidInputError, LogView, SqlConversationLog
from bot.storage.chain import HASHED_FIELDS, content_hash, link_hash
from bot.storage.engine import make_engine, migrate
from bot.storage.models import GENESIS_HASH, ExchangeRow
from bot.storage.view import naive_utc
from tests.storage.conftest import exchange, open_sql_log, sqlite_url


def test_kind_and_raw_text_are_stored_redacted_and_filterable(store: SqlConversationLog) -> None:
    asked = exchange("who are you")
    asked.message.raw_text = "<@123> who are you? mail me at zed@example.org"
    asked.reply.kind = ReplyKind.IDENTITY
    store.record(asked)
    store.record(exchange("What about NATO?"))

    shown = store.get_exchange(asked.id)
    assert shown.kind == "identity"
    assert shown.raw_text == "<@123> who are you? mail me at [email redacted]"
    assert [s.id for s in store.list_exchanges(ExchangeFilter(kind="identity")).items] == [asked.id]
    assert store.list_exchanges(ExchangeFilter(kind="answer")).total == 1
    assert store.verify()[0].ok


def test_editing_kind_or_raw_text_breaks_the_chain(store: SqlConversationLog) -> None:
    asked = exchange()
    asked.message.raw_text = "<@1> hello"
    store.record(asked)
    for name, value in (("kind", "greeting"), ("raw_text", "<@1> forged")):
        with store.engine.begin() as conn:
            original = conn.execute(
                text(f"SELECT {name} FROM exchanges WHERE id = :id"), {"id": asked.id}
            ).scalar_one()
            conn.execute(
                text(f"UPDATE exchanges SET {name} = :v WHERE id = :id"),
                {"v": value, "id": asked.id},
            )
        report = store.verify()[0]
        assert (report.ok, report.exchange_id) == (False, asked.id)
        with store.engine.begin() as conn:
            conn.execute(
                text(f"UPDATE exchanges SET {name} = :v WHERE id = :id"),
                {"v": original, "id": asked.id},
            )
    assert store.verify()[0].ok


def test_delivery_is_recorded_outside_the_content_hash(store: SqlConversationLog) -> None:
    sent, lost = exchange(), exchange("second")
    store.record(sent)
    store.record(lost)
    link = "https://discord.com/channels/1/2/3"
    assert store.record_delivery(sent.id, "3", link, True)
    assert store.record_delivery(lost.id, None, None, False, "403 Missing Access")

    shown = store.get_exchange(sent.id)
    assert (shown.platform_message_id, shown.permalink, shown.delivery) == ("3", link, "delivered")
    assert store.get_exchange(lost.id).delivery == "failed: 403 Missing Access"
    listed = {item.id: item for item in store.list_exchanges().items}
    assert listed[sent.id].permalink == link
    assert all(report.ok for report in store.verify())


def test_delivery_of_unknown_or_malformed_exchange_is_false(store: SqlConversationLog) -> None:
    store.record(exchange())
    assert not store.record_delivery("f" * 32, "1", None, True)
    assert not store.record_delivery("x; DROP TABLE", "1", None, True)
    other = store.list_exchanges().items[0].id
    assert not store.scoped(["guild-2"]).record_delivery(other, "1", None, True)


def test_delivery_never_raises_when_the_database_fails(tmp_path: Path) -> None:
    broken = LogView(create_engine(f"sqlite:///{tmp_path / 'missing' / 'log.db'}"))
    assert not broken.record_delivery("a" * 32, "1", None, True)


def test_one_vote_per_voter_and_changing_it(store: SqlConversationLog) -> None:
    liked, plain = exchange(), exchange("other")
    store.record(liked)
    store.record(plain)
    assert store.vote(liked.id, "discord:42", 1)
    assert store.vote(liked.id, "discord:42", 1)
    assert store.vote(liked.id, "slack:T1:U9", 1)
    assert store.votes(liked.id) == (2, 0)
    assert store.vote(liked.id, "discord:42", -1)
    assert store.votes(liked.id) == (1, 1)
    assert store.votes(plain.id) == (0, 0)

    listed = {item.id: item for item in store.list_exchanges().items}
    assert (listed[liked.id].votes_up, listed[liked.id].votes_down) == (1, 1)
    assert store.get_exchange(liked.id).votes_down == 1
    assert [i.id for i in store.list_exchanges(ExchangeFilter(voted="down")).items] == [liked.id]
    assert store.list_exchanges(ExchangeFilter(voted="up")).total == 1


def test_votes_reject_unknown_exchanges_other_tenants_and_bad_values(
    store: SqlConversationLog,
) -> None:
    sent = exchange()
    store.record(sent)
    assert not store.vote("0" * 32, "discord:1", 1)
    assert not store.scoped(["guild-2"]).vote(sent.id, "discord:1", 1)
    with pytest.raises(InvalidInputError):
        store.vote(sent.id, "discord:1", 2)
    assert store.votes(sent.id) == (0, 0)


def test_purging_a_voted_exchange_removes_its_votes(store: SqlConversationLog) -> None:
    old = exchange(received_at=datetime.now(UTC) - timedelta(days=40))
    store.record(old)
    assert store.vote(old.id, "discord:7", -1)
    assert store.purge(timedelta(days=30), "admin") == 1
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM votes")).scalar_one() == 0
    assert store.verify()[0].ok


def test_claiming_and_releasing_a_flag(store: SqlConversationLog) -> None:
    sent = exchange()
    store.record(sent)
    flag = store.open_flag(sent.id, "discord:5", "rude")
    claimed = store.claim_flag(flag.id, "ana")
    assert claimed.assignee == "ana" and claimed.claimed_at is not None
    taken = store.claim_flag(flag.id, "bo")
    assert taken.assignee == "bo"
    assert store.audit(limit=1)[0].detail == {"flag": flag.id, "previous": "ana"}
    assert store.release_flag(flag.id, "bo").assignee is None
    store.resolve(flag.id, "bo")
    with pytest.raises(InvalidInputError):
        store.claim_flag(flag.id, "ana")
    assert store.flags(status=None)[0].assignee is None


def test_saved_filters_are_per_moderator(store: SqlConversationLog) -> None:
    store.save_filter("ana", "refusals", "refused=true")
    store.save_filter("ana", "refusals", "refused=true&platform=slack")
    store.save_filter("ana", "downvoted", "voted=down")
    store.save_filter("bo", "refusals", "refused=false")
    assert [(f.name, f.query) for f in store.saved_filters("ana")] == [
        ("downvoted", "voted=down"),
        ("refusals", "refused=true&platform=slack"),
    ]
    assert store.delete_filter("ana", "refusals")
    assert not store.delete_filter("ana", "refusals")
    assert [f.name for f in store.saved_filters("ana")] == ["downvoted"]
    assert [f.query for f in store.saved_filters("bo")] == ["refused=false"]
    for bad in ("", "   ", "x" * 129):
        with pytest.raises(InvalidInputError):
            store.save_filter("ana", bad, "q")


def _old_row(seq: int, prev: str, refused: bool) -> ExchangeRow:
    sent = exchange(f"question {seq}", refused=refused)
    now = naive_utc(sent.message.received_at)
    row = ExchangeRow(
        id=sent.id,
        conversation_id=1,
        tenant="guild-1",
        seq=seq,
        platform="discord",
        channel="general",
        user_id="u1",
        user_name="name-u1",
        input_text=sent.message.text,
        reply_text=sent.reply.text,
        refused=refused,
        grounded=not refused,
        moderation=[],
        citations=[],
        retrieved=[],
        prompt_version="v",
        model_id="m",
        options={},
        prompt="p",
        retrieval_ms=1.0,
        ttft_ms=2.0,
        generation_ms=3.0,
        total_ms=6.0,
        prompt_tokens=1,
        completion_tokens=2,
        created=now,
        stored_at=now,
        prev_hash=prev,
        content_hash="",
        row_hash="",
        hash_version=1,
    )
    row.content_hash = content_hash(row)
    row.row_hash = link_hash(row.tenant, seq, prev, row.content_hash)
    return row


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]
)
def test_upgrade_from_0003_backfills_kind_and_keeps_the_chain(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("pg_url")
    engine = make_engine(url)
    migrate(engine, "0003")
    first = _old_row(1, GENESIS_HASH, refused=False)
    second = _old_row(2, first.row_hash, refused=True)
    v1 = ["conversation_id", "seq", "prev_hash", "content_hash", "row_hash", "stored_at"]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO conversations (id, platform, tenant, channel, thread, started) "
                "VALUES (1, 'discord', 'guild-1', 'general', '', :t)"
            ),
            {"t": first.created},
        )
        columns = ExchangeRow.__table__.c  # type: ignore[attr-defined]
        old_table = table("exchanges", *[column(n, columns[n].type) for n in (*HASHED_FIELDS, *v1)])
        for row in (first, second):
            values = {name: getattr(row, name) for name in (*HASHED_FIELDS, *v1)}
            conn.execute(insert(old_table).values(values))
        conn.execute(
            text("INSERT INTO chain_heads (tenant, seq, row_hash) VALUES ('guild-1', 2, :h)"),
            {"h": second.row_hash},
        )
    engine.dispose()

    log = open_sql_log(url, tmp_path)
    try:
        assert log.get_exchange(first.id).kind == "answer"
        assert log.get_exchange(second.id).kind == "out_of_scope"
        log.record(exchange("after the upgrade"))
        assert log.rekey(log.sealer, "admin") == 3  # three exchanges, nothing else yet
        assert [(r.checked, r.ok) for r in log.verify() if r.table == "exchanges"] == [(3, True)]
        with Session(log.engine) as session:
            versions = session.exec(select(ExchangeRow.hash_version).order_by(ExchangeRow.seq))
            assert list(versions) == [1, 1, 2]
    finally:
        log.close()
