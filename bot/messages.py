"""The values that cross the boundary between adapters and the core."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field


class IncomingMessage(BaseModel):
    """One user turn as an adapter hands it to the core.

    `text` is plain text (the adapter has turned mentions into names and dropped links and
    markup); `raw_text` is what the platform delivered, kept for the log. `thread` names the
    conversation: a Slack thread, a Discord thread or reply chain's root; "" for a DM or channel.
    """

    text: str
    raw_text: str | None = None
    platform: str = "local"
    tenant: str = "local"
    channel: str = "terminal"
    thread: str | None = None
    user_id: str = "local-user"
    user_name: str = "you"
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def conversation_key(self) -> tuple[str, str, str, str]:
        """A conversation is its thread (or channel), shared by everyone in it, not one user's."""
        return (self.platform, self.tenant, self.channel, self.thread or "")


class Citation(BaseModel):
    passage_id: str
    section: str
    quote: str
    passage: str


class Verdict(BaseModel):
    """One moderation decision, kept so a moderator can see why the persona did what it did."""

    check: str
    passed: bool
    detail: str = ""


class Timings(BaseModel):
    retrieval_ms: float = 0.0
    ttft_ms: float = 0.0
    generation_ms: float = 0.0
    total_ms: float = 0.0


class TokenCounts(BaseModel):
    prompt: int = 0
    completion: int = 0


class ReplyKind(StrEnum):
    """What kind of reply this is, so stats and filters can tell a refusal from a greeting."""

    ANSWER = "answer"
    NOT_DIRECT = "not_direct"  # the essay does not say it directly; the closest passage is cited
    OUT_OF_SCOPE = "out_of_scope"
    INJECTION = "injection"
    IDENTITY = "identity"
    GREETING = "greeting"
    EMPTY = "empty"
    TOO_LONG = "too_long"
    NOT_TEXT = "not_text"
    RATE_LIMITED = "rate_limited"
    BUSY = "busy"
    UNAVAILABLE = "unavailable"


class Reply(BaseModel):
    """What the persona says, with everything needed to show and audit it."""

    text: str
    kind: ReplyKind = ReplyKind.ANSWER
    # How many sentences the model wrote that survived grounding and reached the reply.
    model_sentences: int = 0
    citations: list[Citation] = Field(default_factory=list)
    refused: bool = False
    grounded: bool = False
    moderation: list[Verdict] = Field(default_factory=list)
    timings: Timings = Field(default_factory=Timings)
    tokens: TokenCounts = Field(default_factory=TokenCounts)


class RetrievedPassage(BaseModel):
    passage_id: str
    score: float


class Trace(BaseModel):
    """What the model saw and how it was asked; stored beside the reply for moderators."""

    prompt_version: str = ""
    model_id: str = ""
    options: dict[str, Any] = Field(default_factory=dict)
    retrieved: list[RetrievedPassage] = Field(default_factory=list)
    prompt: str = ""


class Exchange(BaseModel):
    """One turn as the conversation log stores it; the id lets adapters flag it later."""

    id: str = Field(default_factory=lambda: uuid4().hex)
    message: IncomingMessage
    reply: Reply
    trace: Trace
