"""Conversation log benchmark (not a test): logging overhead per exchange and `list` latency.

    .venv/bin/python benchmarks/log_bench.py                      # SQLite in a temp dir
    .venv/bin/python benchmarks/log_bench.py --postgres URL       # also PostgreSQL (throwaway schema)

Reports p50/p95 of `SqlConversationLog.record` (redaction, chain append, commit) and of
`list_exchanges` pages over a log seeded with 100,000 exchanges.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from bot.messages import Citation, Exchange, IncomingMessage, Reply, RetrievedPassage, Trace
from bot.storage import ExchangeFilter, Redactor, SqlConversationLog
from bot.storage.chain import Sealer, content_hash
from bot.storage.engine import make_engine
from bot.storage.models import GENESIS_HASH, ChainHead, Conversation, ExchangeRow


def sample(index: int, tenant: str) -> Exchange:
    return Exchange(
        message=IncomingMessage(
            text=f"Question {index}: what did the essay say about NATO enlargement in 1994?",
            platform="discord",
            tenant=tenant,
            channel=f"c{index % 20}",
            user_id=f"u{index % 500}",
            user_name="someone",
        ),
        reply=Reply(
            text="Enlargement had to be gradual and open to Russia, I wrote. " * 3,
            citations=[Citation(passage_id="p-1", section="One", quote="gradual", passage="…")],
            grounded=index % 7 != 0,
            refused=index % 11 == 0,
        ),
        trace=Trace(
            prompt_version="v1",
            model_id="bench",
            retrieved=[RetrievedPassage(passage_id="p-1", score=3.2)],
            prompt="system prompt and passages " * 40,
        ),
    )


def percentiles(samples: list[float]) -> str:
    cuts = statistics.quantiles(samples, n=100)
    return f"p50 {cuts[49]:.2f} ms, p95 {cuts[94]:.2f} ms"


def timed(action: Callable[[], object], runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def seed(log: SqlConversationLog, total: int, tenants: list[str]) -> None:
    """Bulk-loads chained rows (as `record` would build them) so seeding 100k takes seconds."""
    start = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30)
    table = ExchangeRow.__table__  # type: ignore[attr-defined]
    with log.engine.begin() as conn:
        heads = dict.fromkeys(tenants, (0, GENESIS_HASH))
        conversation = conn.execute(
            Conversation.__table__.insert().returning(Conversation.__table__.c.id),  # type: ignore[attr-defined]
            {
                "platform": "discord",
                "tenant": "bulk",
                "channel": "bulk",
                "thread": "",
                "started": start,
            },
        ).scalar_one()
        batch = []
        for index in range(total):
            tenant = tenants[index % len(tenants)]
            item = sample(index, tenant)
            score = 3.2 - (index % 97) / 100
            seq, prev = heads[tenant][0] + 1, heads[tenant][1]
            row = ExchangeRow(
                id=uuid.uuid4().hex, conversation_id=conversation, tenant=tenant, seq=seq,
                platform="discord", channel=item.message.channel, thread="",
                user_id=item.message.user_id, user_name="someone", input_text=item.message.text,
                reply_text=item.reply.text, refused=item.reply.refused, grounded=item.reply.grounded,
                moderation=[], citations=[], retrieved=[{"passage_id": "p-1", "score": score}],
                top_score=score,
                prompt_version="v1", model_id="bench", options={}, prompt=item.trace.prompt,
                retrieval_ms=1.0, ttft_ms=1.0, generation_ms=1.0, total_ms=1.0, prompt_tokens=1,
                completion_tokens=1, created=start + timedelta(seconds=index * 20), stored_at=start,
                prev_hash=prev, content_hash="", row_hash="",
            )  # fmt: skip
            row.content_hash = content_hash(row)
            row.row_hash = log.sealer.link(tenant, seq, prev, row.content_hash)
            log.sealer.seal_row(row)
            heads[tenant] = (seq, row.row_hash)
            batch.append(row.model_dump(exclude={"erased_at"}))
            if len(batch) == 5000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
        conn.execute(
            ChainHead.__table__.insert(),  # type: ignore[attr-defined]
            [{"tenant": t, "seq": s, "row_hash": h} for t, (s, h) in heads.items()],
        )


def bench(name: str, url: str, spool: Path, rows: int) -> None:
    log = SqlConversationLog(make_engine(url), spool, Redactor(), sealer=Sealer(b"benchmark key"))
    log.start()
    log.record(sample(0, "guild-x"))  # warm-up: creates the tenant's chain and conversation
    counter = iter(range(1, 10_000))
    record = timed(lambda: log.record(sample(next(counter), "guild-x")), 500)
    print(f"{name}: record() per exchange: {percentiles(record)}")
    started = time.perf_counter()
    seed(log, rows, ["guild-a", "guild-b", "guild-c", "workspace-d"])
    print(f"{name}: seeded {rows} exchanges in {time.perf_counter() - started:.1f} s")
    total = log.list_exchanges().total
    scoped = log.scoped(["guild-a"])
    # 200 replies of one tenant voted down, half of them reviewed, 20 flagged: the queue.
    for number, item in enumerate(scoped.list_exchanges(ExchangeFilter(limit=200)).items):
        log.vote(item.id, f"discord:v{number}", -1)
        if number % 2:
            log.review_votes(item.id, "bench", "fine")
        if number % 10 == 0:
            log.flag(item.id, "discord:reporter", "rude")
    for label, action in [
        ("list (first page of 50)", log.list_exchanges),
        ("list --offset 5000", lambda: log.list_exchanges(ExchangeFilter(offset=5000))),
        ("list --tenant --refused", lambda: log.list_exchanges(ExchangeFilter(tenant="guild-b", refused=True))),
        ("list --search (scoped moderator)", lambda: scoped.list_exchanges(ExchangeFilter(search="question 99"))),
        ("list --user --since 7d", lambda: log.list_exchanges(
            ExchangeFilter(user="u42", since=datetime.now(UTC) - timedelta(days=7)))),
        ("list --sort score (scoped moderator)", lambda: scoped.list_exchanges(
            ExchangeFilter(order="score"))),
        ("queue count: open flags", lambda: scoped.list_exchanges(
            ExchangeFilter(flagged=True, limit=1))),
        ("queue count: voted down, not reviewed", lambda: scoped.list_exchanges(
            ExchangeFilter(voted="down", reviewed=False, flagged=False, limit=1))),
    ]:  # fmt: skip
        print(f"{name}: {label} over {total} rows: {percentiles(timed(action, 30))}")
    started = time.perf_counter()
    reports = log.verify()
    elapsed = time.perf_counter() - started
    print(
        f"{name}: verify {sum(r.checked for r in reports)} rows: {elapsed:.1f} s, ok={all(r.ok for r in reports)}"
    )
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="e.g. postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("sqlite", f"sqlite:///{tmp}/bench.db", Path(tmp) / "spool", args.rows)
        if args.postgres:
            schema = f"bench_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(args.postgres, autocommit=True) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            try:
                url = args.postgres.replace("postgresql://", "postgresql+psycopg://")
                bench(
                    "postgresql",
                    f"{url}?options=-csearch_path%3D{schema}",
                    Path(tmp) / "s2",
                    args.rows,
                )
            finally:
                with psycopg.connect(args.postgres, autocommit=True) as conn:
                    conn.execute(f"DROP SCHEMA {schema} CASCADE")


if __name__ == "__main__":
    main()
