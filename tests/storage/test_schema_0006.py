"""Revision 0006 on SQLite and PostgreSQL: the best retrieval score to sort by, flags assigned by
one moderator to another, and down votes a moderator reviewed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import MetaData, Table, create_engine, select, text

from bot.messages import Exchange, RetrievedPassage
from bot.storage import ExchangeFilter, InvalidInputError, SqlConversationLog
from bot.storage.accounts import ModeratorAccounts
from bot.storage.engine import alembic_config
from tests.storage.conftest import TEST_SEALER, exchange, open_sql_log, sqlite_url


def _sql(store: SqlConversationLog, statement: str, **params: object) -> None:
    with store.engine.begin() as conn:
        conn.execute(text(statement), params)


def _broken(store: SqlConversationLog) -> list[tuple[str, str | None, str | None]]:
    return [(r.table, r.row, r.problem) for r in store.verify() if not r.ok]


def _scored(question: str, *scores: float) -> Exchange:
    sent = exchange(question)
    sent.trace.retrieved = [RetrievedPassage(passage_id=f"p-{s}", score=s) for s in scores]
    return sent


def test_the_best_score_is_stored_and_sorts_lowest_first_with_nothing_last(
    store: SqlConversationLog,
) -> None:
    strong, weak, none, mid = (
        _scored("strong", 0.2, 0.91),
        _scored("weak", 0.12),
        _scored("greeting"),
        _scored("mid", 0.5, 0.4),
    )
    for sent in (strong, weak, none, mid):
        store.record(sent)
    listed = store.list_exchanges(ExchangeFilter(order="score")).items
    assert [(x.input_text, x.top_score) for x in listed] == [
        ("weak", 0.12), ("mid", 0.5), ("strong", 0.91), ("greeting", None),
    ]  # fmt: skip
    assert store.get_exchange(strong.id).top_score == 0.91
    assert all(r.ok for r in store.verify())


def test_a_forged_score_breaks_verification(store: SqlConversationLog) -> None:
    sent = _scored("q", 0.3)
    store.record(sent)
    _sql(store, "UPDATE exchanges SET top_score = 0.99 WHERE id = :id", id=sent.id)
    assert _broken(store) == [
        ("exchanges", sent.id, "exchange's score column does not match its retrieved passages")
    ]


@pytest.fixture
def accounts(store: SqlConversationLog) -> ModeratorAccounts:
    made = ModeratorAccounts(store.engine, sealer=store.sealer)
    made.add("ana", "ana-password-1x", ["guild-1"], admin=False, actor="test")
    made.add("bo", "bo-password-22y", ["guild-1", "guild-2"], admin=False, actor="test")
    made.add("cy", "cy-password-333z", ["guild-2"], admin=False, actor="test")
    made.add("root", "root-password-4w", [], admin=True, actor="test")
    return made


def test_assigning_a_flag_to_another_moderator_of_its_tenant(
    store: SqlConversationLog, accounts: ModeratorAccounts
) -> None:
    sent = exchange()
    store.record(sent)
    flag = store.open_flag(sent.id, "discord:5", "rude")
    assert store.moderators_for("guild-1") == ["ana", "bo", "root"]

    with pytest.raises(InvalidInputError, match="'cy' does not moderate tenant 'guild-1'"):
        store.assign_flag(flag.id, "ana", "cy", "knows the topic")
    with pytest.raises(InvalidInputError, match="Say why"):
        store.assign_flag(flag.id, "ana", "bo", "  ")
    assigned = store.assign_flag(flag.id, "ana", "bo", "knows the topic")
    assert (assigned.assignee, assigned.assigned_by) == ("bo", "ana")
    assert assigned.notes[-1].text == "Assigned to bo: knows the topic"
    entry = store.audit(limit=1)[0]
    assert (entry.actor, entry.action, entry.target) == ("ana", "assign", sent.id)
    assert entry.detail == {
        "flag": flag.id, "assignee": "bo", "previous": None, "reason": "knows the topic",
    }  # fmt: skip

    claimed = store.claim_flag(flag.id, "ana")
    assert (claimed.assignee, claimed.assigned_by) == ("ana", "ana")
    released = store.release_flag(flag.id, "ana")
    assert (released.assignee, released.assigned_by) == (None, None)
    assert all(r.ok for r in store.verify())
    store.resolve(flag.id, "ana")
    with pytest.raises(InvalidInputError, match="already resolved"):
        store.assign_flag(flag.id, "ana", "bo", "late")
    # A moderator of another tenant cannot see the flag, let alone assign it.
    with pytest.raises(Exception, match="No flag"):
        store.scoped(["guild-2"]).assign_flag(flag.id, "cy", "cy", "mine")


def test_reviewed_down_votes_leave_the_queue_until_voted_down_again(
    store: SqlConversationLog,
) -> None:
    down, other, waiting = exchange("down"), exchange("other"), exchange("waiting")
    for sent in (down, other, waiting):
        store.record(sent)
    pending = ExchangeFilter(voted="down", reviewed=False)
    done = ExchangeFilter(reviewed=True)
    with pytest.raises(InvalidInputError, match="no down vote to review"):
        store.review_votes(other.id, "ana", "fine")
    assert store.vote(down.id, "discord:1", -1)
    assert store.vote(other.id, "discord:1", 1)
    assert store.vote(waiting.id, "discord:3", -1)
    assert [x.id for x in store.list_exchanges(pending).items] == [waiting.id, down.id]
    assert all(x.unreviewed_down for x in store.list_exchanges(pending).items)
    pending = pending.model_copy(update={"search": "down"})  # `waiting` stays pending throughout

    with pytest.raises(InvalidInputError, match="Say why the reply is fine"):
        store.review_votes(down.id, "ana", "")
    reviewed = store.review_votes(down.id, "ana", "quotes the essay correctly")
    assert (reviewed.reviewed_by, reviewed.review_reason) == ("ana", "quotes the essay correctly")
    assert not reviewed.unreviewed_down
    assert store.list_exchanges(pending).total == 0
    assert [x.id for x in store.list_exchanges(done).items] == [down.id]
    assert store.list_exchanges(ExchangeFilter(reviewed=False)).items[0].id == waiting.id
    entry = store.audit(limit=1)[0]
    assert (entry.action, entry.target, entry.detail) == (
        "review", down.id, {"reason": "quotes the essay correctly", "down": 1},
    )  # fmt: skip
    assert store.vote(down.id, "discord:1", -1)  # the same vote again: still reviewed
    assert store.list_exchanges(pending).total == 0

    assert store.vote(down.id, "discord:2", -1)  # a new down vote: back in the queue
    assert [x.id for x in store.list_exchanges(pending).items] == [down.id]
    assert store.list_exchanges(done).total == 0
    again = store.review_votes(down.id, "bo", "still fine")
    assert (again.reviewed_by, again.votes_down) == ("bo", 2)
    assert store.list_exchanges(pending).total == 0
    assert all(r.ok for r in store.verify())

    _sql(store, "UPDATE vote_reviews SET reason = 'forged'")
    assert [t for t, _, _ in _broken(store)] == ["vote_reviews"]


def test_reviews_go_with_their_exchange_and_are_scrubbed_like_flags(
    store: SqlConversationLog,
) -> None:
    question = "my cat Whiskers lives in Tallinn"
    old = exchange(question, received_at=datetime.now(UTC) - timedelta(days=40))
    store.record(old)
    assert store.vote(old.id, "discord:9", -1)
    store.review_votes(old.id, "ana", f"fine: they said {question} themselves")
    store.redact(old.id, "ana", "pii")
    assert store.get_exchange(old.id).review_reason == "fine: they said [redacted] themselves"
    assert all(r.ok for r in store.verify())
    assert store.purge(timedelta(days=30), "admin") == 1
    with store.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM vote_reviews")).scalar_one() == 0


def test_a_users_own_votes_and_reports(store: SqlConversationLog) -> None:
    mine, theirs, slack = exchange("a"), exchange("b", user_id="u2"), exchange("c", tenant="T1")
    for sent in (mine, theirs, slack):
        store.record(sent)
    assert store.vote(mine.id, "discord:u7", -1)
    assert store.vote(theirs.id, "discord:u7", 1)
    assert store.vote(theirs.id, "discord:u8", -1)
    assert store.vote(slack.id, "slack:T1:u7", 1)
    store.open_flag(theirs.id, "discord:u7", "wrong")
    store.open_flag(mine.id, "discord:u8", "odd")

    votes = store.user_votes("discord", "guild-1", "u7")
    assert sorted((v.exchange_id, v.value, v.question) for v in votes) == sorted(
        [(mine.id, -1, "a"), (theirs.id, 1, "b")]
    )
    assert [(v.exchange_id, v.value) for v in store.user_votes("slack", "T1", "u7")] == [
        (slack.id, 1)
    ]
    assert [(f.exchange_id, f.reason) for f in store.user_reports("discord", "guild-1", "u7")] == [
        (theirs.id, "wrong")
    ]
    assert store.scoped(["T1"]).user_votes("discord", "guild-1", "u7") == []
    assert store.scoped(["T1"]).user_reports("discord", "guild-1", "u7") == []


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgresql", marks=pytest.mark.service)]
)
def test_upgrade_from_0005_fills_scores_and_keeps_every_seal(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    url = sqlite_url(tmp_path) if backend == "sqlite" else request.getfixturevalue("pg_url")
    log = open_sql_log(url, tmp_path)
    scored, bare = _scored("scored", 0.25, 0.75), _scored("bare")
    log.record(scored)
    log.record(bare)
    flag = log.open_flag(scored.id, "discord:5", "rude")
    log.claim_flag(flag.id, "ana")
    log.close()

    # Without the log's foreign-key pragma: SQLite's batch mode rebuilds the tables it alters.
    engine = create_engine(url)
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0005")
    with engine.begin() as conn:
        # The flag as revision 0005 sealed a claim: over the columns it had.
        flags = Table("flags", MetaData(), autoload_with=conn)  # typed, as the ORM reads it
        values = dict(conn.execute(select(flags)).mappings().one())
        conn.execute(text("UPDATE flags SET seal = :s"), {"s": TEST_SEALER.seal("flags", values)})
    engine.dispose()

    log = open_sql_log(url, tmp_path)
    try:
        assert log.get_exchange(scored.id).top_score == 0.75
        assert log.get_exchange(bare.id).top_score is None
        claim = log.flags()[0]
        assert (claim.assignee, claim.assigned_by) == ("ana", None)
        assert [r for r in log.verify() if not r.ok] == []
        order = log.list_exchanges(ExchangeFilter(order="score")).items
        assert [x.id for x in order] == [scored.id, bare.id]
    finally:
        log.close()
