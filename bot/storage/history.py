"""Conversation history read back from the log, so follow-ups work after restarts and on every worker.

Every process that answers writes its exchanges to the same database; reading a conversation's
recent turns from there makes the conversation one thing for everyone in the thread, whichever
worker or shard answers the next message. Erased rows are never read back.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, or_
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from bot.messages import Citation
from bot.storage.engine import writer
from bot.storage.models import Conversation, ExchangeRow
from bot.storage.view import naive_utc
from bot.understanding.memory import ConversationKey, Turn


class TurnHistory:
    """The reading side of the log that the core's conversation memory uses."""

    engine: Engine

    def recent_turns(self, key: ConversationKey, limit: int) -> list[Turn]:
        """The conversation's last `limit` answered turns, oldest first."""
        statement = (
            select(ExchangeRow)
            .join(Conversation, col(Conversation.id) == col(ExchangeRow.conversation_id))
            .where(
                *_in_conversation(key),
                col(ExchangeRow.erased_at).is_(None),
                or_(
                    col(Conversation.forgotten_at).is_(None),
                    col(ExchangeRow.created) > col(Conversation.forgotten_at),
                ),
            )
            .order_by(col(ExchangeRow.created).desc(), col(ExchangeRow.seq).desc())
            .limit(limit)
        )
        with Session(self.engine) as session:
            rows = list(session.exec(statement))
        return [_turn(row) for row in reversed(rows)]

    def forget_turns(self, key: ConversationKey, when: datetime) -> None:
        """From now on the conversation's history starts after `when`, on every worker."""
        statement = select(Conversation).where(*_in_conversation(key))
        with Session(writer(self.engine)) as session:
            conversation = session.exec(statement).first()
            if conversation is None:
                return
            conversation.forgotten_at = naive_utc(when)
            session.add(conversation)
            session.commit()

    def has_conversation(self, key: ConversationKey) -> bool:
        """True once the persona has answered in this conversation (a thread it should follow)."""
        statement = select(Conversation.id).where(*_in_conversation(key))
        with Session(self.engine) as session:
            return session.exec(statement).first() is not None


def _in_conversation(key: ConversationKey) -> list[ColumnElement[bool]]:
    platform, tenant, channel, thread = key
    return [
        col(Conversation.platform) == platform,
        col(Conversation.tenant) == tenant,
        col(Conversation.channel) == channel,
        col(Conversation.thread) == thread,
    ]


def _turn(row: ExchangeRow) -> Turn:
    options: dict[str, Any] = row.options or {}
    return Turn(
        question=row.input_text,
        answer=row.reply_text,
        citations=tuple(
            Citation(
                passage_id=str(c.get("passage_id", "")),
                section=str(c.get("section", "")),
                quote=str(c.get("quote", "")),
                passage="",
            )
            for c in row.citations or []
        ),
        prompt_passages=tuple(options.get("prompt_passages", ())),
        read_as=str(options.get("read_as", "")),
        span=tuple((str(where[0]), int(where[1])) for where in options.get("span", ())),
        when=row.created.replace(tzinfo=UTC),
    )
