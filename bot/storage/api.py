"""The values the moderation log's query API takes and returns (what the CLI and dashboard use)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import AfterValidator, BaseModel, Field

from bot.errors import PersonabotError
from bot.messages import Timings, TokenCounts, Verdict


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# Stored times are naive UTC; what the API hands out says so explicitly.
UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]


# Listing orders, as `ExchangeFilter.order` takes them.
Order = Literal["new", "old", "latency", "votes", "score"]
ORDERS: tuple[Order, ...] = get_args(Order)


class NotFoundError(PersonabotError):
    """No such record in the caller's tenants (records of other tenants are reported the same way)."""


class InvalidInputError(PersonabotError):
    """A malformed id, date, duration or filter."""


class ForbiddenError(PersonabotError):
    """A scoped moderator tried to act on a tenant outside their scope."""


class ExchangeFilter(BaseModel):
    """Filters for `LogView.list_exchanges` and `iter_exchanges`; None means "any"."""

    platform: str | None = None
    tenant: str | None = None
    channel: str | None = None
    thread: str | None = Field(default=None, description="Thread id; '' is the channel itself.")
    user: str | None = Field(default=None, description="Platform user id.")
    since: UtcDatetime | None = Field(default=None, description="Inclusive, on `created`.")
    until: UtcDatetime | None = Field(default=None, description="Exclusive, on `created`.")
    flagged: bool | None = Field(default=None, description="True: has an open flag.")
    refused: bool | None = None
    grounded: bool | None = None
    kind: str | None = Field(default=None, description="A bot.messages.ReplyKind value.")
    voted: Literal["up", "down"] | None = Field(
        default=None, description="'up': at least one up vote; 'down': at least one down vote."
    )
    reviewed: bool | None = Field(
        default=None,
        description="False: a down vote no moderator has reviewed since it was cast; True: "
        "reviewed, and no down vote since.",
    )
    search: str | None = Field(default=None, description="Case-insensitive, in input or reply.")
    order: Order = Field(
        default="new",
        description="Listing order: newest or oldest first, slowest reply first, most down "
        "votes first, or lowest best retrieval score first (nothing retrieved last); ties newest "
        "first.",
    )
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0)


class NoteInfo(BaseModel):
    id: int
    author: str
    text: str
    created: UtcDatetime


class FlagInfo(BaseModel):
    id: int
    exchange_id: str
    tenant: str
    reporter: str
    reason: str
    status: str
    created: UtcDatetime
    resolved_at: UtcDatetime | None = None
    resolved_by: str | None = None
    assignee: str | None = None
    claimed_at: UtcDatetime | None = None
    assigned_by: str | None = Field(
        default=None, description="Who gave it to the assignee (themselves for a claim)."
    )
    notes: list[NoteInfo] = Field(default_factory=list)


class ExchangeSummary(BaseModel):
    """One row of a listing."""

    id: str
    tenant: str
    platform: str
    channel: str
    thread: str
    user_id: str
    user_name: str
    created: UtcDatetime
    input_text: str
    reply_text: str
    kind: str
    refused: bool
    grounded: bool
    delivery: str = ""
    platform_message_id: str | None = None
    permalink: str | None = None
    open_flags: int = 0
    votes_up: int = 0
    votes_down: int = 0
    unreviewed_down: bool = Field(
        default=False, description="A down vote came after the last review (or there is none)."
    )
    reviewed_by: str | None = None
    reviewed_at: UtcDatetime | None = None
    review_reason: str | None = None
    top_score: float | None = Field(default=None, description="Best retrieval score.")
    erased: bool = False
    redacted_by: str | None = None
    redacted_at: UtcDatetime | None = None


class CitedPassage(BaseModel):
    passage_id: str
    section: str = ""
    quote: str = ""
    score: float | None = Field(default=None, description="Retrieval score, when it was retrieved.")


class ExchangeDetail(ExchangeSummary):
    """Everything stored for one exchange: why the persona answered as it did, and its flags."""

    seq: int
    raw_text: str | None = None
    moderation: list[Verdict]
    citations: list[CitedPassage]
    retrieved: list[CitedPassage]
    prompt_version: str
    model_id: str
    options: dict[str, Any]
    prompt: str
    timings: Timings
    tokens: TokenCounts
    stored_at: UtcDatetime
    row_hash: str
    flags: list[FlagInfo] = Field(default_factory=list)


class VoteInfo(BaseModel):
    """One platform user's vote, with the exchange it is on (for their page)."""

    exchange_id: str
    tenant: str
    voter: str
    value: int
    created: UtcDatetime
    updated: UtcDatetime
    question: str
    reply: str


class SavedFilterInfo(BaseModel):
    """A moderator's saved listing query; `query` is the dashboard's URL query string."""

    name: str
    query: str
    created: UtcDatetime
    updated: UtcDatetime


class Page(BaseModel):
    total: int
    limit: int
    offset: int
    items: list[ExchangeSummary]


class DayStats(BaseModel):
    day: str
    exchanges: int = 0
    refusals: int = 0
    ungrounded: int = 0
    flags: int = 0


class DayLatency(BaseModel):
    """Total reply latency percentiles of one UTC day (nearest-rank)."""

    day: str
    exchanges: int
    p50_ms: float
    p95_ms: float


class ChainReport(BaseModel):
    """The verdict on one table (for exchanges: one tenant's chain): the first bad row, if any.

    `row` names it (an exchange id, `id 17`, a flag id...); `broken_seq` is its place in a
    tenant's chain; `keyed` is False when no PERSONABOT_LOG_KEY was set, so anyone with
    database access could have recomputed the hashes."""

    table: str = "exchanges"
    tenant: str
    checked: int
    ok: bool
    keyed: bool = False
    broken_seq: int | None = None
    exchange_id: str | None = None
    row: str | None = None
    problem: str | None = None


class BanInfo(BaseModel):
    platform: str
    tenant: str
    user_id: str
    reason: str
    banned_by: str
    created: UtcDatetime


class AuditInfo(BaseModel):
    id: int
    at: UtcDatetime
    actor: str
    action: str
    tenant: str | None
    target: str
    detail: dict[str, Any]


class ErasureReport(BaseModel):
    exchanges_deleted: int
    exchanges_anonymised: int
    flags_anonymised: int
    bans_lifted: int
    votes_deleted: int = 0
    rows_scrubbed: int = Field(default=0, description="Other rows that quoted or named the user.")
    spooled_dropped: int = Field(default=0, description="Rejected spool lines removed.")
