"""`SqlConversationLog`: the core's ConversationLog and the adapters' ModerationStore, on SQL.

Recording never raises: a redacted copy of each exchange is appended to its tenant's hash chain,
or, when the database cannot take it, to the on-disk spool, which a background thread replays
once the database answers again. `close()` flushes the spool (or leaves it on disk for the next
start, which replays it).
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine, or_
from sqlalchemy.exc import (
    DBAPIError,
    InterfaceError,
    OperationalError,
    SQLAlchemyError,
)
from sqlmodel import Session, col, select

from bot.errors import PersonabotError
from bot.messages import Exchange
from bot.settings import Settings
from bot.storage.api import ErasureReport
from bot.storage.chain import Sealer, best_score, content_hash
from bot.storage.engine import database_url, make_engine, migrate
from bot.storage.history import TurnHistory
from bot.storage.integrity import lock_head
from bot.storage.models import Conversation, Erasure, ExchangeRow, utcnow
from bot.storage.redaction import Redactor, clip_exchange
from bot.storage.spool import Spool
from bot.storage.view import LogView, erasure_subject, naive_utc

logger = logging.getLogger(__name__)


class SqlConversationLog(TurnHistory, LogView):
    """An admin-scoped `LogView` that also records exchanges; `scoped()` narrows it for moderators."""

    def __init__(
        self,
        engine: Engine,
        spool_dir: Path,
        redactor: Redactor | None = None,
        retry_seconds: float = 5.0,
        sealer: Sealer | None = None,
        max_text_chars: int = 8000,
    ) -> None:
        super().__init__(engine, sealer=sealer)
        self.redactor = redactor
        self.max_text_chars = max_text_chars
        self.spool = Spool(spool_dir)
        self.retry_seconds = retry_seconds
        self._ready = False
        self._state = threading.Lock()
        self._stop = threading.Event()
        self._retrier: threading.Thread | None = None
        self._spooled = self.spool.pending() > 0

    def start(self) -> bool:
        """Migrates the schema and replays any spool; False (and retrying later) if the DB is down."""
        try:
            self._ensure_schema()
            self.flush()
        except SQLAlchemyError as exc:
            logger.warning("conversation log database unavailable at start-up: %s", exc)
            self._retry_in_background()
            return False
        return True

    def record(self, exchange: Exchange) -> None:
        """Stores one exchange; on any failure it is spooled to disk instead. Never raises."""
        try:
            clean = self.redactor.exchange(exchange) if self.redactor else exchange
        except Exception:
            logger.exception("redaction failed; storing exchange %s unredacted", exchange.id)
            clean = exchange
        clean = clip_exchange(clean, self.max_text_chars)
        try:
            if self._spooled:
                self.flush()
            self._write(clean)
        except Exception as exc:
            logger.warning("conversation log unavailable (%s); spooling %s", exc, exchange.id)
            try:
                self.spool.append(clean)
            except OSError:
                logger.exception("could not spool exchange %s: it is lost", exchange.id)
                return
            self._spooled = True
            self._retry_in_background()

    def erase_user(
        self, platform: str, user_id: str, actor: str, tenant: str | None = None
    ) -> ErasureReport:
        """`LogView.erase_user`, after replaying what this process (and dead ones) spooled, so
        nothing of the user's waits on disk; their lines in the rejected spool are dropped. A
        live process's spool is stopped at replay by the erasure marker."""
        if self._spooled:
            self.flush()
        report = super().erase_user(platform, user_id, actor, tenant)
        report.spooled_dropped = self.spool.forget(
            lambda e: (
                e.message.platform == platform
                and e.message.user_id == user_id
                and (tenant is None or e.message.tenant == tenant)
            )
        )
        return report

    def flush(self) -> int:
        """Writes spooled exchanges to the database; raises if it is still unavailable."""
        self._ensure_schema()
        written = self.spool.replay(self._write, transient)
        self._spooled = self.spool.pending() > 0
        return written

    def close(self) -> None:
        """Stops retrying, flushes what it can, and releases connections; safe to call twice."""
        self._stop.set()
        if self._retrier is not None:
            self._retrier.join(timeout=self.retry_seconds + 1)
        if self._spooled:
            try:
                self.flush()
            except Exception as exc:
                logger.warning("spooled exchanges stay on disk until the next start: %s", exc)
        self.engine.dispose()

    def _ensure_schema(self) -> None:
        with self._state:
            if not self._ready:
                migrate(self.engine)
                self._ready = True

    def _retry_in_background(self) -> None:
        with self._state:
            if self._stop.is_set() or (self._retrier and self._retrier.is_alive()):
                return
            self._retrier = threading.Thread(
                target=self._retry, name="conversation-log-retry", daemon=True
            )
            self._retrier.start()

    def _retry(self) -> None:
        while not self._stop.wait(self.retry_seconds):
            try:
                self.flush()
            except Exception as exc:
                logger.info("conversation log still unavailable: %s", exc)
                continue
            if not self._spooled:
                return

    def _write(self, exchange: Exchange) -> None:
        """Appends one exchange to its tenant's chain in one transaction; known ids are skipped."""
        self._ensure_schema()
        message, reply, trace = exchange.message, exchange.reply, exchange.trace
        with self._session() as session, session.begin():
            if session.get(ExchangeRow, exchange.id) is not None:
                return
            if _erased(
                session, message.platform, message.tenant, message.user_id, message.received_at
            ):
                logger.info("not storing exchange %s: its user was erased after it", exchange.id)
                return
            head = lock_head(session, message.tenant)
            conversation = _conversation(session, exchange)
            scores = {p.passage_id: p.score for p in trace.retrieved}
            retrieved = [p.model_dump(mode="json") for p in trace.retrieved]
            row = ExchangeRow(
                id=exchange.id,
                conversation_id=conversation,
                tenant=message.tenant,
                seq=head.seq + 1,
                platform=message.platform,
                channel=message.channel,
                thread=message.thread or "",
                user_id=message.user_id,
                user_name=message.user_name,
                input_text=message.text,
                raw_text=message.raw_text,
                reply_text=reply.text,
                kind=reply.kind.value,
                refused=reply.refused,
                grounded=reply.grounded,
                moderation=[v.model_dump(mode="json") for v in reply.moderation],
                citations=[
                    {
                        "passage_id": c.passage_id,
                        "section": c.section,
                        "quote": c.quote,
                        "score": scores.get(c.passage_id),
                    }
                    for c in reply.citations
                ],
                retrieved=retrieved,
                top_score=best_score(retrieved),
                prompt_version=trace.prompt_version,
                model_id=trace.model_id,
                options=trace.options,
                prompt=trace.prompt,
                retrieval_ms=reply.timings.retrieval_ms,
                ttft_ms=reply.timings.ttft_ms,
                generation_ms=reply.timings.generation_ms,
                total_ms=reply.timings.total_ms,
                prompt_tokens=reply.tokens.prompt,
                completion_tokens=reply.tokens.completion,
                created=naive_utc(message.received_at),
                stored_at=utcnow(),
                prev_hash=head.row_hash,
                content_hash="",
                row_hash="",
            )
            row.content_hash = content_hash(row)
            row.row_hash = self.sealer.link(row.tenant, row.seq, row.prev_hash, row.content_hash)
            head.seq, head.row_hash = row.seq, row.row_hash
            session.add(row)
            session.add(head)


def transient(exc: Exception) -> bool:
    """Failures worth retrying later: the database is away, not refusing this row."""
    if isinstance(exc, DBAPIError):
        return exc.connection_invalidated or isinstance(exc, OperationalError | InterfaceError)
    return isinstance(exc, OSError | SQLAlchemyError)


def _erased(session: Session, platform: str, tenant: str, user_id: str, sent: datetime) -> bool:
    """True when the user was erased after sending this (a spooled exchange replayed late)."""
    stmt = select(Erasure.erased_at).where(
        Erasure.subject == erasure_subject(platform, user_id),
        Erasure.platform == platform,
        or_(col(Erasure.tenant).is_(None), col(Erasure.tenant) == tenant),
    )
    return any(naive_utc(sent) <= erased for erased in session.exec(stmt).all())


def _conversation(session: Session, exchange: Exchange) -> int:
    message = exchange.message
    key = (message.platform, message.tenant, message.channel, message.thread or "")
    stmt = select(Conversation.id).where(
        Conversation.platform == key[0],
        Conversation.tenant == key[1],
        Conversation.channel == key[2],
        Conversation.thread == key[3],
    )
    found = session.exec(stmt).first()
    if found is not None:
        return found
    conversation = Conversation(
        platform=key[0],
        tenant=key[1],
        channel=key[2],
        thread=key[3],
        started=naive_utc(message.received_at),
    )
    session.add(conversation)
    session.flush()
    assert conversation.id is not None
    return conversation.id


def sealer_of(settings: Settings) -> Sealer:
    """Keyed by PERSONABOT_LOG_KEY when it is set (plain SHA-256 otherwise)."""
    key = settings.log_key.get_secret_value() if settings.log_key else ""
    return Sealer(key.encode() or None)


def open_log(settings: Settings, *, require_database: bool = False) -> SqlConversationLog:
    """The log the settings describe. With `require_database` (the `logs` CLI) an unreachable
    database is a user error; otherwise the bot starts anyway and spools until it is back."""
    engine = make_engine(
        database_url(settings.data_dir, settings.database_url), settings.log_busy_timeout_ms
    )
    redactor = (
        Redactor(settings.log_redact_kinds, settings.log_redact_patterns)
        if settings.log_redact
        else None
    )
    log = SqlConversationLog(
        engine,
        settings.log_spool_dir or settings.data_dir / "spool",
        redactor,
        sealer=sealer_of(settings),
        max_text_chars=settings.log_max_text_chars,
    )
    if not log.start() and require_database:
        log.close()
        raise PersonabotError(
            f"Cannot reach the conversation log database at "
            f"{engine.url.render_as_string(hide_password=True)}."
        )
    return log
