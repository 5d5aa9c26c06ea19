"""`verify` against someone with write access to the database but not the key (issue 16)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from bot.storage import InvalidInputError, SqlConversationLog
from bot.storage.chain import Sealer, content_hash
from bot.storage.models import ExchangeRow
from bot.storage.view import utcnow
from tests.storage.conftest import TEST_SEALER, exchange


@pytest.fixture
def seeded(store: SqlConversationLog) -> list[str]:
    sent = [exchange(f"q{i}") for i in range(3)]
    for item in sent:
        store.record(item)
    flag = store.open_flag(sent[1].id, "discord:7", "rude")
    store.add_note(flag.id, "mod", "looking")
    store.ban("discord", "guild-1", "u9", "mod", "spam")
    assert store.vote(sent[0].id, "discord:8", 1)
    store.redact(sent[2].id, "mod", "pii")
    assert all(r.ok for r in store.verify())
    return [item.id for item in sent]


def _sql(store: SqlConversationLog, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def _broken(store: SqlConversationLog) -> list[tuple[str, str | None]]:
    return [(r.table, r.row) for r in store.verify() if not r.ok]


def test_an_edited_reply_is_reported_with_its_row(
    store: SqlConversationLog, seeded: list[str]
) -> None:
    _sql(store, "UPDATE exchanges SET reply_text = 'forged' WHERE id = :id", id=seeded[0])
    assert _broken(store) == [("exchanges", seeded[0])]


@pytest.mark.parametrize("exemption", ["redactions row", "erased_at"])
def test_redaction_or_erasure_marks_do_not_exempt_a_forged_row(
    store: SqlConversationLog, seeded: list[str], exemption: str
) -> None:
    if exemption == "erased_at":
        _sql(store, "UPDATE exchanges SET erased_at = :t WHERE id = :id", t=utcnow(), id=seeded[0])
    else:
        _sql(
            store,
            "INSERT INTO redactions (exchange_id, tenant, redacted_by, redacted_at, reason, key_id)"
            " VALUES (:id, 'guild-1', 'mod', :t, '', '')",
            id=seeded[0],
            t=utcnow(),
        )
    _sql(store, "UPDATE exchanges SET reply_text = 'forged' WHERE id = :id", id=seeded[0])
    broken = _broken(store)
    assert ("exchanges", seeded[0]) in broken
    if exemption != "erased_at":
        assert ("redactions", seeded[0]) in broken  # the inserted row has no valid seal


@pytest.mark.parametrize(
    ("table", "statement"),
    [
        ("audit", "UPDATE audit SET actor = 'someone else' WHERE action = 'ban'"),
        ("audit", "DELETE FROM audit WHERE action = 'note'"),
        ("flags", "UPDATE flags SET reason = 'forged'"),
        ("flag_notes", "UPDATE flag_notes SET text = 'forged'"),
        ("bans", "UPDATE bans SET user_id = 'u10'"),
        ("votes", "UPDATE votes SET value = -1"),
    ],
)
def test_every_moderation_table_is_covered(
    store: SqlConversationLog, seeded: list[str], table: str, statement: str
) -> None:
    _sql(store, statement)
    broken = _broken(store)
    assert [t for t, _ in broken] == [table]
    assert all(row for _, row in broken)


def test_the_last_audit_entry_cannot_silently_go(
    store: SqlConversationLog, seeded: list[str]
) -> None:
    _sql(store, "DELETE FROM audit WHERE id = (SELECT max(id) FROM audit)")
    assert [t for t, _ in _broken(store)] == ["audit"]


@pytest.mark.parametrize("forger", ["no key", "a guessed key"])
def test_a_chain_recomputed_without_the_key_is_reported(
    store: SqlConversationLog, seeded: list[str], forger: str
) -> None:
    """The forger runs the product's own code on the database, with some key of their own."""
    theirs = Sealer(None if forger == "no key" else b"guess")
    with Session(store.engine) as session:
        session.info["rekeying"] = True  # the forger bypasses the product's sealing, too
        row = session.exec(select(ExchangeRow).where(ExchangeRow.id == seeded[0])).one()
        row.reply_text = "forged"
        row.content_hash = content_hash(row)
        row.row_hash = theirs.link(row.tenant, row.seq, row.prev_hash, row.content_hash)
        row.key_id = TEST_SEALER.key_id  # even claiming the right key
        row.seal = theirs.seal("exchanges", row.model_dump())
        session.add(row)
        session.commit()
    report = next(r for r in store.verify() if not r.ok)
    assert (report.table, report.row, report.broken_seq) == ("exchanges", seeded[0], 1)
    assert report.keyed


def test_rotating_the_key(store: SqlConversationLog, seeded: list[str]) -> None:
    new = Sealer(b"the next key")
    rotated = SqlConversationLog(store.engine, store.spool.directory, sealer=new)
    assert rotated.rekey(TEST_SEALER, "admin") > len(seeded)
    assert all(r.ok for r in rotated.verify())
    assert not any(r.ok for r in store.verify() if r.checked)  # the old key no longer fits
    problem = next(r.problem for r in store.verify() if not r.ok) or ""
    assert "sealed with key" in problem and new.key_id in problem


def test_rekey_refuses_a_log_that_does_not_verify(
    store: SqlConversationLog, seeded: list[str]
) -> None:
    _sql(store, "UPDATE flags SET reason = 'forged'")
    rotated = SqlConversationLog(store.engine, store.spool.directory, sealer=Sealer(b"next"))
    with pytest.raises(InvalidInputError, match="Not re-keying: flags"):
        rotated.rekey(TEST_SEALER, "admin")


def test_a_legitimate_change_does_not_launder_a_forged_one(
    store: SqlConversationLog, seeded: list[str]
) -> None:
    _sql(store, "UPDATE exchanges SET reply_text = 'forged' WHERE id = :id", id=seeded[0])
    assert store.record_delivery(seeded[0], "1", None, True)  # the product touches the row
    store.redact(seeded[0], "mod", "")
    assert ("exchanges", seeded[0]) in _broken(store)
