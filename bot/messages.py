"""The values that cross the boundary between adapters and the core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

from pydantic import BaseModel, Field


class IncomingMessage(BaseModel):
    """One user turn as an adapter hands it to the core."""

    text: str
    platform: str = "local"
    tenant: str = "local"
    channel: str = "terminal"
    thread: str | None = None
    user_id: str = "local-user"
    user_name: str = "you"
    received_at: datetime = Field(default_factory=lambda: datetime.now(UTC))

    def conversation_key(self) -> tuple[str, str, str, str, str]:
        """Memory is kept per user within a channel or thread, so `/forget` only clears the caller's."""
        return (self.platform, self.tenant, self.channel, self.thread or "", self.user_id)


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


class Reply(BaseModel):
    """What the persona says, with everything needed to show and audit it."""

    text: str
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
