"""The listing orders the dashboard sorts by, and the stats figures it draws, on SQLite and
PostgreSQL: newest, oldest, slowest and most voted down first; kinds, flagged exchanges by their
own day, votes, model and canned latency per day."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from bot.messages import ReplyKind
from bot.storage import ExchangeFilter, SqlConversationLog
from bot.storage.insights import day_insights, percentile
from tests.storage.conftest import PG_ADMIN, open_sql_log
from tests.web.browsing import record


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.service)])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SqlConversationLog]:
    schema = f"o_{uuid.uuid4().hex[:12]}"
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


def test_listing_orders(store: SqlConversationLog) -> None:
    start = datetime(2026, 11, 1, 12, tzinfo=UTC)
    ids = [
        record(store, f"q{i}", "a", ReplyKind.ANSWER, when=start + timedelta(hours=i),
               model_tokens=tokens)
        for i, tokens in enumerate([5, 0, 7, 0])
    ]  # fmt: skip
    # Model answers take 900 ms, canned replies 3 ms (see tests/web/browsing.record).
    for voter in ("discord:a", "discord:b"):
        assert store.vote(ids[1], voter, -1)
    assert store.vote(ids[3], "discord:a", -1)
    assert store.vote(ids[2], "discord:a", 1)

    def listed(order: str) -> list[str]:
        page = store.list_exchanges(ExchangeFilter.model_validate({"order": order}))
        return [item.id for item in page.items]

    assert listed("new") == ids[::-1]
    assert listed("old") == ids
    assert listed("latency") == [ids[2], ids[0], ids[3], ids[1]]
    assert listed("votes") == [ids[1], ids[3], ids[2], ids[0]]
    paged = store.list_exchanges(ExchangeFilter(order="votes", limit=2, offset=1))
    assert [item.id for item in paged.items] == [ids[3], ids[2]] and paged.total == 4


def test_day_insights(store: SqlConversationLog) -> None:
    day1 = datetime(2026, 11, 1, 12, tzinfo=UTC)
    day2 = day1 + timedelta(days=1)
    flagged = record(store, "q", "a", ReplyKind.ANSWER, when=day1, model_tokens=4)
    record(store, "hi", "hello", ReplyKind.GREETING, when=day1)
    record(store, "pizza?", "no", ReplyKind.OUT_OF_SCOPE, when=day2)
    record(store, "other tenant", "no", ReplyKind.OUT_OF_SCOPE, when=day2, tenant="g2")
    for reporter in ("discord:a", "discord:b", "discord:c"):
        store.open_flag(flagged, reporter, "odd")  # three flags today on yesterday's exchange
    assert store.vote(flagged, "discord:a", -1)

    days = day_insights(store.scoped(["guild-a"]))
    first, second = days["2026-11-01"], days["2026-11-02"]
    assert (first.exchanges, first.kinds) == (2, {"answer": 1, "greeting": 1})
    assert first.flagged == 1
    assert (second.exchanges, second.kinds, second.flagged) == (1, {"out_of_scope": 1}, 0)
    assert (first.model_ms, first.canned_ms, second.canned_ms) == ([900.0], [3.0], [3.0])
    today = datetime.now(UTC).date().isoformat()
    assert days[today].votes_down == 1 and days[today].exchanges == 0
    assert sum(d.exchanges for d in day_insights(store).values()) == 4
    windowed = day_insights(store, since=day2, until=day2 + timedelta(days=1))
    assert list(windowed) == ["2026-11-02"]
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 10.0], 50) == 2.0
    assert percentile([3.0, 1.0, 2.0, 10.0], 95) == 10.0
