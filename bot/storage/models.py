"""The moderation log's tables. Times are naive UTC so SQLite and PostgreSQL hash and compare alike."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pydantic import NaiveDatetime
from sqlalchemy import JSON, CheckConstraint, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

# Stands in for a platform user's id and name once that user's data has been erased.
ERASED = "[erased]"
GENESIS_HASH = "0" * 64


def utcnow() -> datetime:
    """Naive UTC, the form every stored time takes."""
    return datetime.now(UTC).replace(tzinfo=None)


# The audit trail's chain head; tenant ids never contain whitespace.
AUDIT_CHAIN = " audit"


class Conversation(SQLModel, table=True):
    """A place where the persona talks: one channel or thread of one tenant on one platform."""

    __tablename__ = "conversations"
    __table_args__ = (UniqueConstraint("platform", "tenant", "channel", "thread"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=64)
    tenant: str = Field(max_length=128, index=True)
    channel: str = Field(max_length=256)
    thread: str = Field(default="", max_length=256)
    started: NaiveDatetime
    # Turns up to this moment are no longer read back as the conversation's history (rev 0007).
    forgotten_at: NaiveDatetime | None = None


class ExchangeRow(SQLModel, table=True):
    """One turn: what was asked, what was answered, and everything that explains the answer.

    `seq`, `prev_hash`, `content_hash` and `row_hash` chain the rows of one tenant together so
    that an edited, deleted or reordered row is detectable (see `bot.storage.chain`).
    """

    __tablename__ = "exchanges"
    __table_args__ = (
        UniqueConstraint("tenant", "seq"),
        Index("ix_exchanges_tenant_created", "tenant", "created"),
        Index("ix_exchanges_tenant_top_score", "tenant", "top_score"),
        # Lets a moderator's counts (open flags, votes) read ids from the index alone.
        Index("ix_exchanges_tenant_id", "tenant", "id"),
    )

    id: str = Field(primary_key=True, max_length=64)
    conversation_id: int = Field(foreign_key="conversations.id", index=True)
    tenant: str = Field(max_length=128)
    seq: int
    platform: str = Field(max_length=64, index=True)
    channel: str = Field(max_length=256)
    thread: str = Field(default="", max_length=256)
    user_id: str = Field(max_length=128, index=True)
    user_name: str = Field(max_length=256)
    input_text: str = Field(sa_column=Column(Text, nullable=False))
    # What the platform delivered (mentions, links), redacted and erased like input_text.
    raw_text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    reply_text: str = Field(sa_column=Column(Text, nullable=False))
    kind: str = Field(default="answer", max_length=32, index=True)  # a bot.messages.ReplyKind
    refused: bool
    grounded: bool
    moderation: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    citations: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    retrieved: list[dict[str, Any]] = Field(sa_column=Column(JSON, nullable=False))
    prompt_version: str = Field(max_length=128)
    model_id: str = Field(max_length=256)
    options: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    retrieval_ms: float
    ttft_ms: float
    generation_ms: float
    total_ms: float
    prompt_tokens: int
    completion_tokens: int
    created: NaiveDatetime = Field(index=True)
    stored_at: NaiveDatetime
    prev_hash: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)
    erased_at: NaiveDatetime | None = None
    # Which fields the content hash covers (see bot.storage.chain); rows before rev 0004 are 1.
    hash_version: int = 2
    # Set after the reply was posted, so outside the content hash (see bot.storage.chain).
    platform_message_id: str | None = Field(default=None, max_length=128)
    permalink: str | None = Field(default=None, max_length=1024)
    delivery: str = Field(default="", max_length=512)  # "", "delivered" or "failed: <detail>"
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)
    # The best retrieval score in `retrieved` (None: nothing retrieved), a column so listings
    # can sort by it; derived from hashed content, so `verify` checks it against `retrieved`.
    top_score: float | None = None


class ChainHead(SQLModel, table=True):
    """The last link of each tenant's chain; locking it serialises appends across processes."""

    __tablename__ = "chain_heads"

    tenant: str = Field(primary_key=True, max_length=128)
    seq: int
    row_hash: str = Field(max_length=64)


class Tombstone(SQLModel, table=True):
    """The hashes of a purged or erased row, kept so the chain still verifies without its content."""

    __tablename__ = "tombstones"
    __table_args__ = (UniqueConstraint("tenant", "seq"),)

    id: int | None = Field(default=None, primary_key=True)
    tenant: str = Field(max_length=128)
    seq: int
    exchange_id: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    content_hash: str = Field(max_length=64)
    row_hash: str = Field(max_length=64)
    reason: str = Field(max_length=32)
    removed_at: NaiveDatetime
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class Flag(SQLModel, table=True):
    """A report on one exchange, from a platform user or a moderator, until a moderator resolves it."""

    __tablename__ = "flags"

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: str = Field(foreign_key="exchanges.id", index=True, max_length=64)
    tenant: str = Field(max_length=128, index=True)
    reporter: str = Field(max_length=256)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    status: str = Field(default="open", max_length=16, index=True)
    created: NaiveDatetime
    resolved_at: NaiveDatetime | None = None
    resolved_by: str | None = Field(default=None, max_length=256)
    assignee: str | None = Field(default=None, max_length=256)
    claimed_at: NaiveDatetime | None = None
    # Who gave the flag to `assignee` (the assignee themselves for a claim; rev 0006 on).
    assigned_by: str | None = Field(default=None, max_length=256)
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class Vote(SQLModel, table=True):
    """A platform user's thumbs up (+1) or down (-1) on one reply; one per voter, changeable."""

    __tablename__ = "votes"
    __table_args__ = (
        UniqueConstraint("exchange_id", "voter"),
        CheckConstraint("value IN (1, -1)", name="ck_votes_value"),
    )

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: str = Field(foreign_key="exchanges.id", index=True, max_length=64)
    tenant: str = Field(max_length=128, index=True)
    voter: str = Field(max_length=256, index=True)  # "discord:<id>", "slack:<team>:<id>"
    value: int
    created: NaiveDatetime
    updated: NaiveDatetime
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class VoteReview(SQLModel, table=True):
    """A moderator's look at a reply users voted down: it covers the down votes cast before
    `reviewed_at`, so the reply leaves the queue until someone votes it down again."""

    __tablename__ = "vote_reviews"

    id: int | None = Field(default=None, primary_key=True)
    exchange_id: str = Field(foreign_key="exchanges.id", unique=True, max_length=64)
    tenant: str = Field(max_length=128, index=True)
    reviewed_by: str = Field(max_length=256)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    reviewed_at: NaiveDatetime
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class SavedFilter(SQLModel, table=True):
    """A moderator's named listing query (the dashboard's query string), private to them."""

    __tablename__ = "saved_filters"
    __table_args__ = (UniqueConstraint("moderator", "name"),)

    id: int | None = Field(default=None, primary_key=True)
    moderator: str = Field(max_length=128, index=True)
    name: str = Field(max_length=128)
    query: str = Field(sa_column=Column(Text, nullable=False))
    created: NaiveDatetime
    updated: NaiveDatetime


class FlagNote(SQLModel, table=True):
    """A moderator's note on a flag."""

    __tablename__ = "flag_notes"

    id: int | None = Field(default=None, primary_key=True)
    flag_id: int = Field(foreign_key="flags.id", index=True)
    author: str = Field(max_length=256)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created: NaiveDatetime
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class Ban(SQLModel, table=True):
    """A platform user a moderator has barred from talking to the persona in one tenant."""

    __tablename__ = "bans"
    __table_args__ = (UniqueConstraint("platform", "tenant", "user_id"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=64)
    tenant: str = Field(max_length=128, index=True)
    user_id: str = Field(max_length=128)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    banned_by: str = Field(max_length=256)
    created: NaiveDatetime
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class AuditEntry(SQLModel, table=True):
    """One moderator action: who did what to which record, and when."""

    __tablename__ = "audit"

    id: int | None = Field(default=None, primary_key=True)
    at: NaiveDatetime = Field(index=True)
    actor: str = Field(max_length=256)
    action: str = Field(max_length=64)
    tenant: str | None = Field(default=None, max_length=128, index=True)
    target: str = Field(default="", max_length=256)
    detail: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    # The audit trail is one chain, in id order, like a tenant's exchanges.
    prev_hash: str | None = Field(default=None, max_length=64)
    content_hash: str | None = Field(default=None, max_length=64)
    row_hash: str | None = Field(default=None, max_length=64)
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class Redaction(SQLModel, table=True):
    """A moderator's redaction of one exchange's text. The row keeps its original hashes, so the
    chain still links; its content is no longer re-hashed (like an erased row)."""

    __tablename__ = "redactions"

    exchange_id: str = Field(primary_key=True, foreign_key="exchanges.id", max_length=64)
    tenant: str = Field(max_length=128, index=True)
    redacted_by: str = Field(max_length=256)
    redacted_at: NaiveDatetime
    reason: str = Field(sa_column=Column(Text, nullable=False))
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class Erasure(SQLModel, table=True):
    """That a platform user was erased, so an exchange of theirs still waiting in some process's
    spool is dropped when it is replayed. Holds a one-way digest of the user id, not the id."""

    __tablename__ = "erasures"

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=64)
    tenant: str | None = Field(default=None, max_length=128)
    subject: str = Field(max_length=64, index=True)
    erased_at: NaiveDatetime
    # Tamper evidence (bot.storage.chain): a MAC over the row as it is now, and whose key made it.
    seal: str | None = Field(default=None, max_length=64)
    key_id: str = Field(default="", max_length=16)


class Moderator(SQLModel, table=True):
    """A dashboard account: an argon2 hash (never the password) and the tenants it may review."""

    __tablename__ = "moderators"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=128, unique=True)
    password_hash: str = Field(max_length=512)
    admin: bool = False
    tenants: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created: NaiveDatetime
    password_changed: NaiveDatetime


class ModeratorSession(SQLModel, table=True):
    """A signed-in browser. Only the SHA-256 of the cookie's token is stored, so a copy of the
    database does not let anyone sign in; the CSRF token is bound to the session."""

    __tablename__ = "moderator_sessions"

    token_hash: str = Field(primary_key=True, max_length=64)
    moderator_id: int = Field(foreign_key="moderators.id", index=True)
    csrf_token: str = Field(max_length=128)
    created: NaiveDatetime
    last_seen: NaiveDatetime
    expires: NaiveDatetime = Field(index=True)
