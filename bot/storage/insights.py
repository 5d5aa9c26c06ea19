"""Per-day figures for the dashboard's stats page that `LogView.stats` does not give: replies by
kind, the share of each day's exchanges that were ever flagged, votes, and latency split between
canned replies and model answers.

Every query is limited to the view's tenants, exactly as `LogView._scope` limits its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import distinct, func
from sqlmodel import Session, col, select

from bot.storage.models import ExchangeRow, Flag, Vote
from bot.storage.view import LogView, naive_utc


@dataclass
class DayInsight:
    """One UTC day. `flagged` counts that day's exchanges that have ever been flagged (by the
    exchange's day, so it never exceeds `exchanges`); votes count by the vote's day."""

    day: str
    exchanges: int = 0
    kinds: dict[str, int] = field(default_factory=dict)
    flagged: int = 0
    votes_up: int = 0
    votes_down: int = 0
    model_ms: list[float] = field(default_factory=list)
    canned_ms: list[float] = field(default_factory=list)


def _scoped(view: LogView, stmt: Any, tenant_column: Any) -> Any:
    return stmt if view.tenants is None else stmt.where(tenant_column.in_(sorted(view.tenants)))


def _window(stmt: Any, column: Any, since: datetime | None, until: datetime | None) -> Any:
    if since is not None:
        stmt = stmt.where(column >= naive_utc(since))
    if until is not None:
        stmt = stmt.where(column < naive_utc(until))
    return stmt


def day_insights(
    view: LogView, since: datetime | None = None, until: datetime | None = None
) -> dict[str, DayInsight]:
    """Figures per UTC day (`YYYY-MM-DD`), for days that had any exchange or vote."""
    days: dict[str, DayInsight] = {}

    def day_of(value: object) -> DayInsight:
        key = str(value)
        return days.setdefault(key, DayInsight(day=key))

    with Session(view.engine) as session:
        day = func.date(ExchangeRow.created)
        rows = session.exec(
            _window(
                _scoped(
                    view,
                    select(day, col(ExchangeRow.kind), func.count()).group_by(
                        day, col(ExchangeRow.kind)
                    ),
                    col(ExchangeRow.tenant),
                ),
                col(ExchangeRow.created),
                since,
                until,
            )
        ).all()
        for value, kind, count in rows:
            found = day_of(value)
            found.kinds[kind] = found.kinds.get(kind, 0) + count
            found.exchanges += count

        flagged = _scoped(
            view,
            select(day, func.count(distinct(col(ExchangeRow.id))))
            .join(Flag, col(Flag.exchange_id) == col(ExchangeRow.id))
            .group_by(day),
            col(ExchangeRow.tenant),
        )
        for value, count in session.exec(
            _window(flagged, col(ExchangeRow.created), since, until)
        ).all():
            day_of(value).flagged = count

        vote_day = func.date(Vote.created)
        votes = _scoped(
            view,
            select(vote_day, col(Vote.value), func.count()).group_by(vote_day, col(Vote.value)),
            col(Vote.tenant),
        )
        for value, sign, count in session.exec(
            _window(votes, col(Vote.created), since, until)
        ).all():
            if sign > 0:
                day_of(value).votes_up = count
            else:
                day_of(value).votes_down = count

        # A reply the model wrote any token of is a model answer; the rest (greetings, identity,
        # refusals, rate limits) are canned and take milliseconds, so they are kept apart.
        timings = _scoped(
            view,
            select(day, col(ExchangeRow.completion_tokens), col(ExchangeRow.total_ms)),
            col(ExchangeRow.tenant),
        )
        for value, tokens, total_ms in session.exec(
            _window(timings, col(ExchangeRow.created), since, until)
        ).all():
            found = day_of(value)
            (found.model_ms if tokens > 0 else found.canned_ms).append(float(total_ms))
    return days


def percentile(values: Sequence[float], percent: int) -> float | None:
    """Nearest-rank percentile, as `LogView.latency` computes it; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, -(-len(ordered) * percent // 100) - 1)]


def kind_totals(days: dict[str, DayInsight]) -> dict[str, int]:
    totals: dict[str, int] = defaultdict(int)
    for found in days.values():
        for kind, count in found.kinds.items():
            totals[kind] += count
    return dict(totals)
