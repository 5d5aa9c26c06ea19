"""The query layer: every read and every moderator action, always limited to the caller's tenants.

A `LogView` is built with the set of tenants its moderator may see (None means all: an admin).
Every statement goes through `_scope`, so a scoped view cannot read another tenant's rows, not
even by guessing an id: such ids are reported as unknown.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Engine, String, and_, case, cast, delete, exists, func, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.sql import ColumnElement
from sqlmodel import Session, col, select

from bot.messages import Timings, TokenCounts, Verdict
from bot.storage.api import (
    AuditInfo,
    BanInfo,
    ChainReport,
    CitedPassage,
    DayLatency,
    DayStats,
    ErasureReport,
    ExchangeDetail,
    ExchangeFilter,
    ExchangeSummary,
    FlagInfo,
    ForbiddenError,
    InvalidInputError,
    NoteInfo,
    NotFoundError,
    Page,
    SavedFilterInfo,
    VoteInfo,
)
from bot.storage.chain import Sealer, writing
from bot.storage.engine import writer
from bot.storage.integrity import append_audit as _audit
from bot.storage.integrity import rekey, verify_all
from bot.storage.models import (
    ERASED,
    AuditEntry,
    Ban,
    Erasure,
    ExchangeRow,
    Flag,
    FlagNote,
    Moderator,
    Redaction,
    SavedFilter,
    Tombstone,
    Vote,
    VoteReview,
    utcnow,
)
from bot.storage.redaction import fragments, scrub, scrub_verdicts, scrub_words

logger = logging.getLogger(__name__)
_ID = re.compile(r"^[0-9A-Za-z_-]{6,64}$")
_BATCH = 500
# The largest id a 32-bit INTEGER column (PostgreSQL's) holds.
MAX_ID = 2**31 - 1
# What a redacted exchange's question, answer and prompt read afterwards.
REDACTED = "[redacted]"
MAX_REASON = 2000


class _Filterable(Protocol):
    def where(self, *clauses: Any) -> Self: ...


S = TypeVar("S", bound=_Filterable)


def naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


class LogView:
    """Reads and moderates the log on behalf of one moderator's tenants (None: every tenant)."""

    def __init__(
        self, engine: Engine, tenants: Iterable[str] | None = None, sealer: Sealer | None = None
    ) -> None:
        self.engine = engine
        self._writer = writer(engine)
        self.tenants = frozenset(tenants) if tenants is not None else None
        self.sealer = sealer or Sealer()

    def _session(self) -> Session:
        """A session for changes: it takes SQLite's write lock and seals what it writes."""
        return writing(Session(self._writer), self.sealer)

    def scoped(self, tenants: Iterable[str]) -> LogView:
        """A view limited to `tenants` (and to this view's own scope, if it has one)."""
        wanted = frozenset(tenants)
        return LogView(
            self.engine, wanted if self.tenants is None else wanted & self.tenants, self.sealer
        )

    # -- reading ---------------------------------------------------------------------------

    def list_exchanges(self, where: ExchangeFilter | None = None) -> Page:
        """Newest first; `total` counts every match so a UI can page."""
        where = where or ExchangeFilter()
        with Session(self.engine) as session:
            conditions = self._conditions(where)
            total = session.exec(
                select(func.count()).select_from(ExchangeRow).where(*conditions)
            ).one()
            rows = session.exec(
                select(ExchangeRow)
                .where(*conditions)
                .order_by(*_listing_order(where.order))
                .limit(where.limit)
                .offset(where.offset)
            ).all()
            ids = [row.id for row in rows]
            counts = _open_flag_counts(session, ids)
            redactions = _redactions(session, ids)
            feedback = _feedback(session, ids)
            items = [
                _summary(row, counts.get(row.id, 0), redactions.get(row.id), feedback.get(row.id))
                for row in rows
            ]
        return Page(total=total, limit=where.limit, offset=where.offset, items=items)

    def iter_exchanges(self, where: ExchangeFilter | None = None) -> Iterator[ExchangeDetail]:
        """Every match in full, oldest first, ignoring limit/offset: for exports."""
        conditions = self._conditions(where or ExchangeFilter())
        last: tuple[datetime, str] | None = None
        while True:
            with Session(self.engine) as session:
                stmt = select(ExchangeRow).where(*conditions)
                if last is not None:
                    stmt = stmt.where(
                        or_(
                            col(ExchangeRow.created) > last[0],
                            and_(
                                col(ExchangeRow.created) == last[0], col(ExchangeRow.id) > last[1]
                            ),
                        )
                    )
                rows = session.exec(
                    stmt.order_by(col(ExchangeRow.created), col(ExchangeRow.id)).limit(_BATCH)
                ).all()
                details = _details(session, rows)
            yield from details
            if len(rows) < _BATCH:
                return
            last = (rows[-1].created, rows[-1].id)

    def get_exchange(self, exchange_id: str) -> ExchangeDetail:
        """By full id or by a unique prefix of at least six characters."""
        with Session(self.engine) as session:
            row = self._find(session, exchange_id)
            return _details(session, [row])[0]

    def votes(self, exchange_id: str) -> tuple[int, int]:
        """(up, down) vote counts of one exchange."""
        with Session(self.engine) as session:
            row = self._find(session, exchange_id)
            found = _feedback(session, [row.id]).get(row.id)
            return (found.up, found.down) if found else (0, 0)

    def user_votes(
        self, platform: str, tenant: str, user_id: str, limit: int = 100
    ) -> list[VoteInfo]:
        """The votes one platform user cast in one tenant, newest change first."""
        with Session(self.engine) as session:
            stmt = self._scope(
                select(Vote, ExchangeRow.input_text, ExchangeRow.reply_text).join(
                    ExchangeRow, col(ExchangeRow.id) == col(Vote.exchange_id)
                ),
                col(Vote.tenant),
            ).where(Vote.tenant == tenant, _voter_forms(platform, user_id, tenant))
            found = session.exec(stmt.order_by(col(Vote.updated).desc()).limit(limit)).all()
            return [
                VoteInfo(**vote.model_dump(), question=question, reply=reply)
                for vote, question, reply in found
            ]

    def user_reports(
        self, platform: str, tenant: str, user_id: str, limit: int = 100
    ) -> list[FlagInfo]:
        """The flags one platform user raised (the Report action) in one tenant, newest first."""
        with Session(self.engine) as session:
            stmt = self._scope(select(Flag), col(Flag.tenant)).where(
                Flag.tenant == tenant, _reporter_forms(platform, user_id, tenant)
            )
            found = session.exec(stmt.order_by(col(Flag.created).desc()).limit(limit)).all()
            return _flag_infos(session, found)

    def moderators_for(self, tenant: str) -> list[str]:
        """Names of the accounts that moderate `tenant` (admins moderate every tenant)."""
        self._allowed(tenant)
        with Session(self.engine) as session:
            return _moderators(session, tenant)

    def flags(self, status: str | None = "open", limit: int = 100) -> list[FlagInfo]:
        with Session(self.engine) as session:
            stmt = self._scope(select(Flag), col(Flag.tenant))
            if status:
                stmt = stmt.where(Flag.status == status)
            rows = session.exec(stmt.order_by(col(Flag.created).desc()).limit(limit)).all()
            return _flag_infos(session, rows)

    def stats(self, since: datetime | None = None, until: datetime | None = None) -> list[DayStats]:
        """Exchanges, refusals, ungrounded answers and flags per UTC day, oldest first."""
        days: dict[str, DayStats] = {}
        with Session(self.engine) as session:
            day = func.date(ExchangeRow.created)
            stmt = self._scope(
                select(
                    day,
                    func.count(),
                    func.sum(case((col(ExchangeRow.refused), 1), else_=0)),
                    func.sum(
                        case(
                            (and_(~col(ExchangeRow.refused), ~col(ExchangeRow.grounded)), 1),
                            else_=0,
                        )
                    ),
                ),
                col(ExchangeRow.tenant),
            )
            stmt = _between(stmt, col(ExchangeRow.created), since, until)
            for value, count, refusals, ungrounded in session.exec(stmt.group_by(day)).all():
                key = str(value)
                days[key] = DayStats(
                    day=key, exchanges=count, refusals=refusals or 0, ungrounded=ungrounded or 0
                )
            flag_day = func.date(Flag.created)
            stmt_flags = self._scope(select(flag_day, func.count()), col(Flag.tenant))
            stmt_flags = _between(stmt_flags, col(Flag.created), since, until)
            for value, count in session.exec(stmt_flags.group_by(flag_day)).all():
                key = str(value)
                days.setdefault(key, DayStats(day=key)).flags = count
        return [days[key] for key in sorted(days)]

    def latency(
        self, since: datetime | None = None, until: datetime | None = None
    ) -> list[DayLatency]:
        """p50 and p95 of total reply latency per UTC day, oldest first (computed here, as SQLite
        has no percentile function)."""
        per_day: dict[str, list[float]] = defaultdict(list)
        with Session(self.engine) as session:
            day = func.date(ExchangeRow.created)
            stmt = self._scope(select(day, col(ExchangeRow.total_ms)), col(ExchangeRow.tenant))
            stmt = _between(stmt, col(ExchangeRow.created), since, until)
            for value, total_ms in session.exec(stmt).all():
                per_day[str(value)].append(float(total_ms))
        return [
            DayLatency(
                day=key,
                exchanges=len(values),
                p50_ms=_nearest_rank(sorted(values), 50),
                p95_ms=_nearest_rank(sorted(values), 95),
            )
            for key, values in sorted(per_day.items())
        ]

    def audit(self, limit: int = 100, offset: int = 0) -> list[AuditInfo]:
        """Newest first; a scoped moderator sees only actions on their own tenants."""
        if not 1 <= limit <= 10_000 or offset < 0:
            raise InvalidInputError("Show 1 to 10,000 audit entries, from an offset of 0 or more.")
        with Session(self.engine) as session:
            stmt = self._scope(select(AuditEntry), col(AuditEntry.tenant))
            rows = session.exec(
                stmt.order_by(col(AuditEntry.id).desc()).limit(limit).offset(offset)
            ).all()
            return [AuditInfo.model_validate(row, from_attributes=True) for row in rows]

    def bans(self) -> list[BanInfo]:
        with Session(self.engine) as session:
            rows = session.exec(
                self._scope(select(Ban), col(Ban.tenant)).order_by(col(Ban.created))
            ).all()
            return [BanInfo.model_validate(row, from_attributes=True) for row in rows]

    def is_banned(self, platform: str, tenant: str, user_id: str) -> bool:
        with Session(self.engine) as session:
            stmt = self._scope(select(Ban.id), col(Ban.tenant)).where(
                Ban.platform == platform, Ban.tenant == tenant, Ban.user_id == user_id
            )
            return session.exec(stmt).first() is not None

    def verify(self) -> list[ChainReport]:
        """Each tenant's chain in scope, then (for an admin) the audit trail's chain and every
        sealed table: the first edited, inserted, deleted or moved row of each."""
        with Session(self.engine) as session:
            return verify_all(session, self.sealer, self.tenants)

    def rekey(self, old: Sealer, actor: str) -> int:
        """Checks everything under `old` (rows stored before seals existed the old way), then
        re-links and re-seals every row under this view's key, in one transaction. Admins only."""
        if self.tenants is not None:
            raise ForbiddenError("Only an admin can re-key the log.")
        with self._session() as session, session.begin():
            return rekey(session, old, self.sealer, actor)

    # -- moderator actions (each one is audited) ---------------------------------------------

    def open_flag(self, exchange_id: str, reporter: str, reason: str) -> FlagInfo:
        if not reason.strip():
            raise InvalidInputError("Say why the exchange needs review (the reason is empty).")
        with self._session() as session, session.begin():
            row = self._find(session, exchange_id)
            flag = Flag(
                exchange_id=row.id,
                tenant=row.tenant,
                reporter=reporter,
                reason=reason,
                created=utcnow(),
            )
            session.add(flag)
            session.flush()
            _audit(
                session, reporter, "flag", row.tenant, row.id, {"flag": flag.id, "reason": reason}
            )
            return _flag_infos(session, [flag])[0]

    def flag(self, exchange_id: str, reporter: str, reason: str) -> bool:
        """`ModerationStore.flag`: False when the exchange is unknown (or outside the scope).
        A platform user's report may come without a reason."""
        try:
            self.open_flag(exchange_id, reporter, reason.strip() or "(no reason given)")
        except (NotFoundError, InvalidInputError):
            return False
        return True

    def vote(self, exchange_id: str, voter: str, value: int) -> bool:
        """`ModerationStore.vote`: one vote per voter and exchange; voting again replaces it.
        False when the exchange is unknown (or outside the scope)."""
        if value not in (1, -1):
            raise InvalidInputError(f"A vote is 1 or -1, not {value!r}.")
        if not _ID.match(exchange_id):
            return False
        try:
            return self._put_vote(exchange_id, voter, value)
        except IntegrityError:  # the same voter's other vote landed first: update that one
            return self._put_vote(exchange_id, voter, value)

    def _put_vote(self, exchange_id: str, voter: str, value: int) -> bool:
        with self._session() as session, session.begin():
            stmt = self._scope(select(ExchangeRow.tenant), col(ExchangeRow.tenant))
            tenant = session.exec(stmt.where(ExchangeRow.id == exchange_id)).first()
            if tenant is None:
                return False
            now = utcnow()
            vote = session.exec(
                select(Vote).where(Vote.exchange_id == exchange_id, Vote.voter == voter)
            ).first()
            if vote is None:
                vote = Vote(
                    exchange_id=exchange_id,
                    tenant=tenant,
                    voter=voter,
                    value=value,
                    created=now,
                    updated=now,
                )
            elif vote.value != value:
                vote.value, vote.updated = value, now
            session.add(vote)
        return True

    def record_delivery(
        self,
        exchange_id: str,
        message_id: str | None,
        permalink: str | None,
        delivered: bool,
        detail: str = "",
    ) -> bool:
        """`ModerationStore.record_delivery`: where the reply was posted, or why it was not.
        False for an unknown exchange or a database failure, which is logged, never raised."""
        if not _ID.match(exchange_id):
            return False
        status = "delivered" if delivered else f"failed: {detail}".strip()
        try:
            with self._session() as session, session.begin():
                stmt = self._scope(select(ExchangeRow), col(ExchangeRow.tenant))
                row = session.exec(stmt.where(ExchangeRow.id == exchange_id)).first()
                if row is None:
                    return False
                row.platform_message_id = message_id[:128] if message_id else None
                row.permalink = permalink[:1024] if permalink else None
                row.delivery = status[:512]
                session.add(row)
        except Exception:
            logger.exception("could not record delivery of exchange %s", exchange_id)
            return False
        return True

    def claim_flag(self, flag_id: int, moderator: str) -> FlagInfo:
        """Assigns an open flag to a moderator (taking it over from another is audited too)."""
        with self._session() as session, session.begin():
            flag = self._flag(session, flag_id)
            if flag.status != "open":
                raise InvalidInputError(f"Flag {flag_id} is already {flag.status}.")
            previous = flag.assignee
            flag.assignee, flag.claimed_at, flag.assigned_by = moderator, utcnow(), moderator
            session.add(flag)
            _audit(
                session,
                moderator,
                "claim",
                flag.tenant,
                flag.exchange_id,
                {"flag": flag_id, "previous": previous},
            )
            session.flush()
            return _flag_infos(session, [flag])[0]

    def assign_flag(self, flag_id: int, actor: str, assignee: str, reason: str) -> FlagInfo:
        """Gives an open flag to a moderator of its tenant; the reason goes in the audit trail
        and, as a note, on the flag."""
        reason = _reason(reason, "Say why you assign the flag")
        with self._session() as session, session.begin():
            flag = self._flag(session, flag_id)
            if flag.status != "open":
                raise InvalidInputError(f"Flag {flag_id} is already {flag.status}.")
            candidates = _moderators(session, flag.tenant)
            if assignee not in candidates:
                raise InvalidInputError(
                    f"{assignee!r} does not moderate tenant {flag.tenant!r}: assign the flag to "
                    f"one of {', '.join(candidates)}."
                )
            previous = flag.assignee
            flag.assignee, flag.claimed_at, flag.assigned_by = assignee, utcnow(), actor
            session.add(flag)
            session.add(
                FlagNote(
                    flag_id=flag_id,
                    author=actor,
                    text=f"Assigned to {assignee}: {reason}",
                    created=utcnow(),
                )
            )
            _audit(
                session,
                actor,
                "assign",
                flag.tenant,
                flag.exchange_id,
                {"flag": flag_id, "assignee": assignee, "previous": previous, "reason": reason},
            )
            session.flush()
            return _flag_infos(session, [flag])[0]

    def review_votes(self, exchange_id: str, actor: str, reason: str) -> ExchangeDetail:
        """Marks the down votes an exchange has so far as looked at and found fine, so it leaves
        the queue; a later down vote brings it back."""
        reason = _reason(reason, "Say why the reply is fine")
        with self._session() as session, session.begin():
            row = self._find(session, exchange_id)
            down = session.exec(
                select(func.count())
                .select_from(Vote)
                .where(Vote.exchange_id == row.id, col(Vote.value) < 0)
            ).one()
            if not down:
                raise InvalidInputError(f"Exchange {row.id} has no down vote to review.")
            review = session.exec(
                select(VoteReview).where(VoteReview.exchange_id == row.id)
            ).first() or VoteReview(
                exchange_id=row.id,
                tenant=row.tenant,
                reviewed_by=actor,
                reason=reason,
                reviewed_at=utcnow(),
            )
            review.reviewed_by, review.reason, review.reviewed_at = actor, reason, utcnow()
            session.add(review)
            _audit(session, actor, "review", row.tenant, row.id, {"reason": reason, "down": down})
            session.flush()
            return _details(session, [row])[0]

    def release_flag(self, flag_id: int, actor: str) -> FlagInfo:
        """Returns a claimed flag to the unassigned queue."""
        with self._session() as session, session.begin():
            flag = self._flag(session, flag_id)
            previous = flag.assignee
            flag.assignee, flag.claimed_at, flag.assigned_by = None, None, None
            session.add(flag)
            _audit(
                session,
                actor,
                "release",
                flag.tenant,
                flag.exchange_id,
                {"flag": flag_id, "previous": previous},
            )
            session.flush()
            return _flag_infos(session, [flag])[0]

    def audit_export(
        self, actor: str, fmt: str, where: ExchangeFilter, count: int, destination: str
    ) -> None:
        """Records who exported what (the filter, how many rows, where to)."""
        scope = where.tenant or (
            next(iter(self.tenants)) if self.tenants and len(self.tenants) == 1 else None
        )
        detail = {
            "format": fmt,
            "rows": count,
            "to": destination[:256],
            "filter": where.model_dump(mode="json", exclude_defaults=True),
            "scope": sorted(self.tenants) if self.tenants is not None else "all",
        }
        with self._session() as session, session.begin():
            _audit(session, actor, "export", scope, "", detail)

    # -- a moderator's saved filters (private to them, so not tenant-scoped or audited) -------

    def saved_filters(self, moderator: str) -> list[SavedFilterInfo]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(SavedFilter)
                .where(SavedFilter.moderator == moderator)
                .order_by(col(SavedFilter.name))
            ).all()
            return [SavedFilterInfo.model_validate(row, from_attributes=True) for row in rows]

    def save_filter(self, moderator: str, name: str, query: str) -> SavedFilterInfo:
        """Creates or replaces the moderator's filter of that name."""
        name = name.strip()
        if not name or len(name) > 128:
            raise InvalidInputError("A filter name is 1 to 128 characters.")
        if len(query) > 4000:
            raise InvalidInputError("A saved filter's query is at most 4000 characters.")
        now = utcnow()
        with self._session() as session, session.begin():
            row = session.exec(
                select(SavedFilter).where(
                    SavedFilter.moderator == moderator, SavedFilter.name == name
                )
            ).first() or SavedFilter(
                moderator=moderator, name=name, query=query, created=now, updated=now
            )
            row.query, row.updated = query, now
            session.add(row)
            session.flush()
            return SavedFilterInfo.model_validate(row, from_attributes=True)

    def delete_filter(self, moderator: str, name: str) -> bool:
        with self._session() as session, session.begin():
            gone = session.exec(
                delete(SavedFilter).where(
                    col(SavedFilter.moderator) == moderator, col(SavedFilter.name) == name
                )
            ).rowcount
        return bool(gone)

    def resolve(self, flag_id: int, actor: str, note: str | None = None) -> FlagInfo:
        with self._session() as session, session.begin():
            flag = self._flag(session, flag_id)
            if flag.status == "resolved":
                raise InvalidInputError(
                    f"Flag {flag_id} was already resolved by {flag.resolved_by}; add a note instead."
                )
            flag.status = "resolved"
            flag.resolved_at = utcnow()
            flag.resolved_by = actor
            if note:
                session.add(FlagNote(flag_id=flag_id, author=actor, text=note, created=utcnow()))
            session.add(flag)
            _audit(session, actor, "resolve", flag.tenant, flag.exchange_id, {"flag": flag_id})
            session.flush()
            return _flag_infos(session, [flag])[0]

    def add_note(self, flag_id: int, actor: str, text: str) -> FlagInfo:
        if not text.strip():
            raise InvalidInputError("The note is empty.")
        with self._session() as session, session.begin():
            flag = self._flag(session, flag_id)
            session.add(FlagNote(flag_id=flag_id, author=actor, text=text, created=utcnow()))
            _audit(session, actor, "note", flag.tenant, flag.exchange_id, {"flag": flag_id})
            session.flush()
            return _flag_infos(session, [flag])[0]

    def redact(self, exchange_id: str, actor: str, reason: str = "") -> ExchangeDetail:
        """Replaces an exchange's question, answer and rendered prompt with a placeholder, and
        scrubs its text from later prompts of the same conversation (which quote it as memory).
        The audit trail records who redacted it; the original text is kept nowhere."""
        now = utcnow()
        with self._session() as session, session.begin():
            row = self._find(session, exchange_id)
            if row.input_text == REDACTED and row.reply_text == REDACTED:
                raise InvalidInputError(f"Exchange {row.id} is already redacted.")
            originals = [
                text
                for text in (row.input_text, row.reply_text, row.raw_text or "")
                if text.strip()
            ]
            pieces = fragments(originals)
            row.input_text, row.reply_text, row.prompt = REDACTED, REDACTED, REDACTED
            if row.raw_text is not None:
                row.raw_text = REDACTED
            row.moderation = scrub_verdicts(row.moderation, originals)
            # The question as the core read it (with what a follow-up referred back to).
            row.options = _scrub_json(row.options, pieces, whole_words=False, marker=REDACTED)
            session.add(row)
            _mark_redacted(session, row, actor, now, reason)
            later = session.exec(
                select(ExchangeRow).where(
                    ExchangeRow.tenant == row.tenant,
                    ExchangeRow.platform == row.platform,
                    ExchangeRow.channel == row.channel,
                    ExchangeRow.thread == row.thread,
                    ExchangeRow.id != row.id,
                    col(ExchangeRow.created) >= row.created,
                )
            ).all()
            scrubbed = []
            for other in later:
                before = (other.prompt, other.moderation, other.options)
                other.prompt = scrub(other.prompt, pieces, REDACTED)
                other.moderation = [
                    {**v, "detail": scrub(str(v.get("detail", "")), pieces, REDACTED)}
                    for v in other.moderation
                ]
                other.options = _scrub_json(
                    other.options, pieces, whole_words=False, marker=REDACTED
                )
                if (other.prompt, other.moderation, other.options) != before:
                    session.add(other)
                    _mark_redacted(session, other, actor, now, f"quoted redacted exchange {row.id}")
                    scrubbed.append(other.id)
            for flag in session.exec(select(Flag).where(Flag.exchange_id == row.id)).all():
                flag.reason = scrub(flag.reason, pieces, REDACTED)
                session.add(flag)
                notes = select(FlagNote).where(FlagNote.flag_id == flag.id)
                for note in session.exec(notes).all():
                    note.text = scrub(note.text, pieces, REDACTED)
                    session.add(note)
            for review in session.exec(
                select(VoteReview).where(VoteReview.exchange_id == row.id)
            ).all():
                review.reason = scrub(review.reason, pieces, REDACTED)
                session.add(review)
            quoting = self._scope(select(AuditEntry), col(AuditEntry.tenant)).where(
                AuditEntry.target == row.id
            )
            for entry in session.exec(quoting).all():
                entry.detail = _scrub_json(entry.detail, pieces, whole_words=False, marker=REDACTED)
                session.add(entry)
            _audit(
                session,
                actor,
                "redact",
                row.tenant,
                row.id,
                {
                    "reason": reason,
                    "fields": ["input_text", "raw_text", "reply_text", "prompt", "moderation"],
                    "scrubbed_prompts": scrubbed,
                },
            )
            session.flush()
            return _details(session, [row])[0]

    def ban(self, platform: str, tenant: str, user_id: str, actor: str, reason: str = "") -> bool:
        """True when newly banned, False when already banned."""
        self._allowed(tenant)
        with self._session() as session, session.begin():
            already = session.exec(
                select(Ban.id).where(
                    Ban.platform == platform, Ban.tenant == tenant, Ban.user_id == user_id
                )
            ).first()
            if already is not None:
                return False
            session.add(
                Ban(
                    platform=platform,
                    tenant=tenant,
                    user_id=user_id,
                    reason=reason,
                    banned_by=actor,
                    created=utcnow(),
                )
            )
            _audit(session, actor, "ban", tenant, f"{platform}:{user_id}", {"reason": reason})
        return True

    def unban(self, platform: str, tenant: str, user_id: str, actor: str) -> bool:
        self._allowed(tenant)
        with self._session() as session, session.begin():
            gone = session.exec(
                delete(Ban).where(
                    col(Ban.platform) == platform,
                    col(Ban.tenant) == tenant,
                    col(Ban.user_id) == user_id,
                )
            ).rowcount
            if gone:
                _audit(session, actor, "unban", tenant, f"{platform}:{user_id}", {})
        return bool(gone)

    def purge(self, older_than: timedelta, actor: str, dry_run: bool = False) -> int:
        """Deletes exchanges created before now - `older_than`, with their flags; keeps
        tombstones, and keeps exchanges with an open flag (a moderator still has to look).
        With `dry_run`, only counts what would go."""
        if older_than <= timedelta(0):
            raise InvalidInputError("The retention period must be positive.")
        try:
            cutoff = utcnow() - older_than
        except OverflowError:  # longer ago than the calendar goes: nothing is that old
            cutoff = datetime.min
        open_flag = exists().where(
            col(Flag.exchange_id) == col(ExchangeRow.id), col(Flag.status) == "open"
        )
        stmt = self._scope(select(ExchangeRow), col(ExchangeRow.tenant)).where(
            col(ExchangeRow.created) < cutoff, ~open_flag
        )
        if dry_run:
            with Session(self.engine) as session:
                return session.exec(select(func.count()).select_from(stmt.subquery())).one()
        removed = 0
        with self._session() as session, session.begin():
            per_tenant: dict[str, int] = defaultdict(int)
            for batch in _batches(session.exec(stmt).all()):
                _remove(session, batch, "purge")
                removed += len(batch)
                for row in batch:
                    per_tenant[row.tenant] += 1
            for tenant, count in sorted(per_tenant.items()):
                _audit(
                    session,
                    actor,
                    "purge",
                    tenant,
                    "",
                    {
                        "older_than_s": older_than.total_seconds(),
                        "cutoff": cutoff.isoformat(),
                        "deleted": count,
                    },
                )
            if not per_tenant:
                _audit(
                    session, actor, "purge", None, "", {"cutoff": cutoff.isoformat(), "deleted": 0}
                )
        return removed

    def erase_user(
        self, platform: str, user_id: str, actor: str, tenant: str | None = None
    ) -> ErasureReport:
        """Forgets one platform user everywhere the log keeps text: their exchanges go, except
        flagged ones, which stay as moderation records under a placeholder; their reports and
        votes (`discord:<id>`, `slack:<team>:<id>` as adapters store them) are anonymised or
        deleted, their bans lifted; their id, names and deleted questions are scrubbed from
        every other row that quotes them (later prompts, verdicts, notes, reasons, audit
        details). A marker (a digest of the id, not the id) stops a spooled exchange of theirs
        from coming back."""
        if tenant is not None:
            self._allowed(tenant)
        now = utcnow()
        with self._session() as session, session.begin():
            stmt = self._scope(select(ExchangeRow), col(ExchangeRow.tenant)).where(
                ExchangeRow.platform == platform, ExchangeRow.user_id == user_id
            )
            if tenant is not None:
                stmt = stmt.where(ExchangeRow.tenant == tenant)
            rows = session.exec(stmt).all()
            flagged = {
                exchange_id
                for batch in _batches([row.id for row in rows])
                for exchange_id in session.exec(
                    select(Flag.exchange_id).where(col(Flag.exchange_id).in_(batch))
                ).all()
            }
            kept = [row for row in rows if row.id in flagged]
            gone = [row for row in rows if row.id not in flagged]
            names = sorted({row.user_name for row in rows if len(row.user_name) >= 3} - {ERASED})
            who = [user_id, *names]
            # Memory quotes a question within its conversation only: scrub it there.
            asked: dict[int, list[str]] = defaultdict(list)
            for row in gone:
                asked[row.conversation_id] += [row.input_text, row.raw_text or ""]
            said = {conversation: fragments(texts) for conversation, texts in asked.items()}
            first = min((row.created for row in rows), default=now)
            for row in kept:
                row.user_id = ERASED
                row.user_name = ERASED
                row.erased_at = now
                session.add(row)
            for batch in _batches(gone):
                _remove(session, batch, "erasure")
            reporters = _reporter_forms(platform, user_id, tenant)
            flags = session.exec(self._scope(select(Flag), col(Flag.tenant)).where(reporters)).all()
            for flag in flags:
                flag.reporter, flag.reason = ERASED, ERASED
                session.add(flag)
            votes = _voter_forms(platform, user_id, tenant)
            dropped_votes = session.exec(
                delete(Vote).where(votes, *self._scoped_on(col(Vote.tenant)))
            ).rowcount
            bans = self._scope(select(Ban), col(Ban.tenant)).where(
                Ban.platform == platform, Ban.user_id == user_id
            )
            if tenant is not None:
                bans = bans.where(Ban.tenant == tenant)
            lifted = session.exec(bans).all()
            for ban in lifted:
                session.delete(ban)
            scrubbed = self._scrub_everywhere(session, platform, tenant, who, said, first)
            audited = self._scope(select(AuditEntry), col(AuditEntry.tenant)).where(
                or_(
                    col(AuditEntry.target) == f"{platform}:{user_id}",
                    _reporter_forms(platform, user_id, tenant, col(AuditEntry.actor)),
                    *[
                        func.lower(cast(AuditEntry.detail, String)).contains(
                            w.lower(), autoescape=True
                        )
                        for w in who
                    ],
                )
            )
            for entry in session.exec(audited).all():
                if entry.target == f"{platform}:{user_id}":
                    entry.target = f"{platform}:{ERASED}"
                if entry.actor != _erased_actor(entry.actor, platform, user_id):
                    entry.actor = _erased_actor(entry.actor, platform, user_id)
                    entry.detail = {
                        k: (ERASED if k == "reason" else v) for k, v in entry.detail.items()
                    }
                entry.detail = _scrub_json(entry.detail, who)
                session.add(entry)
            session.add(
                Erasure(
                    platform=platform,
                    tenant=tenant,
                    subject=erasure_subject(platform, user_id),
                    erased_at=now,
                )
            )
            report = ErasureReport(
                exchanges_deleted=len(gone),
                exchanges_anonymised=len(kept),
                flags_anonymised=len(flags),
                bans_lifted=len(lifted),
                votes_deleted=dropped_votes,
                rows_scrubbed=scrubbed,
            )
            _audit(
                session, actor, "erase-user", tenant, f"{platform}:{ERASED}", report.model_dump()
            )
        return report

    def _scoped_on(self, column: Any) -> list[ColumnElement[bool]]:
        return [] if self.tenants is None else [column.in_(sorted(self.tenants))]

    def _scrub_everywhere(
        self,
        session: Session,
        platform: str,
        tenant: str | None,
        who: Sequence[str],
        said: dict[int, list[str]],
        since: datetime,
    ) -> int:
        """Scrubs a user's id and names (as whole words) from the other rows of their tenants
        that hold them, and their erased questions (`said`, per conversation) from the later
        rows of those conversations; returns how many rows changed."""
        changed = 0
        texts = (
            ExchangeRow.input_text,
            ExchangeRow.raw_text,
            ExchangeRow.reply_text,
            ExchangeRow.prompt,
        )
        mentions = [col(column).icontains(w, autoescape=True) for column in texts for w in who]
        candidates = self._scope(select(ExchangeRow), col(ExchangeRow.tenant)).where(
            ExchangeRow.platform == platform,
            or_(
                *mentions,
                and_(
                    col(ExchangeRow.conversation_id).in_(sorted(said) or [-1]),
                    col(ExchangeRow.created) >= since,
                ),
            ),
        )
        if tenant is not None:
            candidates = candidates.where(ExchangeRow.tenant == tenant)
        for row in session.exec(candidates).all():
            quoted = said.get(row.conversation_id, [])
            before = (
                row.input_text,
                row.raw_text,
                row.reply_text,
                row.prompt,
                row.moderation,
                row.options,
            )
            row.input_text = scrub(row.input_text, who, ERASED, whole_words=True)
            # A follow-up's reading quotes the earlier question it referred back to.
            row.options = _scrub_json(_scrub_json(row.options, quoted, whole_words=False), who)
            row.reply_text = scrub(row.reply_text, who, ERASED, whole_words=True)
            if row.raw_text is not None:
                row.raw_text = scrub(row.raw_text, who, ERASED, whole_words=True)
            row.prompt = scrub(scrub(row.prompt, quoted, ERASED), who, ERASED, whole_words=True)
            row.moderation = [
                {
                    **v,
                    "detail": scrub(
                        scrub_words(str(v.get("detail", "")), quoted), who, ERASED, whole_words=True
                    ),
                }
                for v in row.moderation
            ]
            after = (
                row.input_text,
                row.raw_text,
                row.reply_text,
                row.prompt,
                row.moderation,
                row.options,
            )
            if before != after:
                session.add(row)
                changed += 1
        free_texts: list[tuple[Any, Any, Any]] = [
            (Flag, col(Flag.reason), col(Flag.tenant)),
            (Redaction, col(Redaction.reason), col(Redaction.tenant)),
            (VoteReview, col(VoteReview.reason), col(VoteReview.tenant)),
        ]
        for model, column, tenant_column in free_texts:
            stmt = self._scope(select(model), tenant_column).where(
                or_(*[column.icontains(w, autoescape=True) for w in who])
            )
            for found in session.exec(stmt).all():
                found.reason = scrub(found.reason, who, ERASED, whole_words=True)
                session.add(found)
                changed += 1
        notes = (
            select(FlagNote)
            .join(Flag, col(Flag.id) == col(FlagNote.flag_id))
            .where(
                or_(*[col(FlagNote.text).icontains(w, autoescape=True) for w in who]),
                *self._scoped_on(col(Flag.tenant)),
            )
        )
        for note in session.exec(notes).all():
            note.text = scrub(note.text, who, ERASED, whole_words=True)
            session.add(note)
            changed += 1
        return changed

    # -- scoping -----------------------------------------------------------------------------

    def _scope(self, stmt: S, tenant_column: Any) -> S:
        """The one place tenant isolation happens: every query passes through here."""
        if self.tenants is None:
            return stmt
        return stmt.where(tenant_column.in_(sorted(self.tenants)))

    def _allowed(self, tenant: str) -> None:
        if self.tenants is not None and tenant not in self.tenants:
            raise ForbiddenError(f"Tenant {tenant!r} is outside your moderation scope.")

    def _conditions(self, where: ExchangeFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.tenants is not None:
            conditions.append(col(ExchangeRow.tenant).in_(sorted(self.tenants)))
        for column, value in (
            (ExchangeRow.platform, where.platform),
            (ExchangeRow.tenant, where.tenant),
            (ExchangeRow.channel, where.channel),
            (ExchangeRow.thread, where.thread),
            (ExchangeRow.user_id, where.user),
            (ExchangeRow.refused, where.refused),
            (ExchangeRow.grounded, where.grounded),
            (ExchangeRow.kind, where.kind),
        ):
            if value is not None:
                conditions.append(col(column) == value)
        if where.since is not None:
            conditions.append(col(ExchangeRow.created) >= naive_utc(where.since))
        if where.until is not None:
            conditions.append(col(ExchangeRow.created) < naive_utc(where.until))
        # Membership in a set of ids rather than a subquery per row: SQLite then reads the few
        # flagged or voted ids once instead of probing for every exchange of the tenant.
        exchange_id = col(ExchangeRow.id)
        if where.flagged is not None:
            flagged = select(Flag.exchange_id).where(col(Flag.status) == "open")
            conditions.append(
                exchange_id.in_(flagged) if where.flagged else exchange_id.not_in(flagged)
            )
        if where.voted is not None:
            sign = 1 if where.voted == "up" else -1
            conditions.append(exchange_id.in_(select(Vote.exchange_id).where(Vote.value == sign)))
        if where.reviewed is not None:
            conditions.append(_reviewed(where.reviewed))
        if where.search:
            conditions.append(
                or_(
                    col(ExchangeRow.input_text).icontains(where.search, autoescape=True),
                    col(ExchangeRow.reply_text).icontains(where.search, autoescape=True),
                )
            )
        return conditions

    def _find(self, session: Session, exchange_id: str) -> ExchangeRow:
        if not _ID.match(exchange_id):
            raise InvalidInputError(
                f"{exchange_id!r} is not an exchange id (6 to 64 letters, digits, - or _)."
            )
        stmt = self._scope(select(ExchangeRow), col(ExchangeRow.tenant))
        row = session.exec(stmt.where(ExchangeRow.id == exchange_id)).first()
        if row is not None:
            return row
        matches = session.exec(
            stmt.where(col(ExchangeRow.id).startswith(exchange_id, autoescape=True)).limit(2)
        ).all()
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise InvalidInputError(f"Exchange id prefix {exchange_id!r} is ambiguous.")
        raise NotFoundError(f"No exchange {exchange_id!r}.")

    def _flag(self, session: Session, flag_id: int) -> Flag:
        if not 0 < flag_id <= MAX_ID:  # beyond what either database's integer column holds
            raise NotFoundError(f"No flag {flag_id}.")
        stmt = self._scope(select(Flag), col(Flag.tenant)).where(Flag.id == flag_id)
        flag = session.exec(stmt).first()
        if flag is None:
            raise NotFoundError(f"No flag {flag_id}.")
        return flag


def _reporter_forms(
    platform: str, user_id: str, tenant: str | None, column: Any = None
) -> ColumnElement[bool]:
    """A platform user as adapters write reporters and voters: `discord:<id>`,
    `slack:<team>:<id>`, or the bare id (older rows and the CLI)."""
    column = col(Flag.reporter) if column is None else column
    team = "%" if tenant is None else _like(tenant)
    return or_(
        column == user_id,
        column == f"{platform}:{user_id}",
        column.like(f"{_like(platform)}:{team}:{_like(user_id)}", escape="\\"),
    )


def _voter_forms(platform: str, user_id: str, tenant: str | None) -> ColumnElement[bool]:
    return _reporter_forms(platform, user_id, tenant, col(Vote.voter))


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _erased_actor(actor: str, platform: str, user_id: str) -> str:
    """The placeholder for an audit actor that names the erased user."""
    if actor in (user_id, f"{platform}:{user_id}"):
        return f"{platform}:{ERASED}"
    if actor.startswith(f"{platform}:") and actor.endswith(f":{user_id}"):
        return f"{actor.removesuffix(user_id)}{ERASED}"
    return actor


def _scrub_json(
    value: Any, needles: Sequence[str], whole_words: bool = True, marker: str = ERASED
) -> Any:
    """Every string inside a JSON value, scrubbed of `needles`."""
    if isinstance(value, str):
        return scrub(value, needles, marker, whole_words=whole_words)
    if isinstance(value, list):
        return [_scrub_json(item, needles, whole_words, marker) for item in value]
    if isinstance(value, dict):
        return {k: _scrub_json(v, needles, whole_words, marker) for k, v in value.items()}
    return value


def erasure_subject(platform: str, user_id: str) -> str:
    """A one-way digest naming an erased user (unkeyed, so it survives a key rotation)."""
    return hashlib.sha256(f"personabot erasure\n{platform}\n{user_id}".encode()).hexdigest()


def _listing_order(order: str) -> list[Any]:
    """ORDER BY for `ExchangeFilter.order`; ties always fall back to newest first, then id."""
    newest = [col(ExchangeRow.created).desc(), col(ExchangeRow.id).desc()]
    if order == "old":
        return [col(ExchangeRow.created), col(ExchangeRow.id)]
    if order == "latency":
        return [col(ExchangeRow.total_ms).desc(), *newest]
    if order == "score":
        return [col(ExchangeRow.top_score).asc().nulls_last(), *newest]
    if order == "votes":
        down = (
            select(func.count())
            .select_from(Vote)
            .where(col(Vote.exchange_id) == col(ExchangeRow.id), col(Vote.value) < 0)
            .scalar_subquery()
        )
        return [down.desc(), *newest]
    return newest


def _between(stmt: S, column: Any, since: datetime | None, until: datetime | None) -> S:
    if since is not None:
        stmt = stmt.where(column >= naive_utc(since))
    if until is not None:
        stmt = stmt.where(column < naive_utc(until))
    return stmt


T = TypeVar("T")


def _batches(items: Sequence[T]) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]


def _remove(session: Session, rows: Sequence[ExchangeRow], reason: str) -> None:
    """Deletes exchanges and their flags, leaving each one's hashes so the chain still verifies."""
    now = utcnow()
    ids = [row.id for row in rows]
    for row in rows:
        session.add(
            Tombstone(
                tenant=row.tenant,
                seq=row.seq,
                exchange_id=row.id,
                prev_hash=row.prev_hash,
                content_hash=row.content_hash,
                row_hash=row.row_hash,
                reason=reason,
                removed_at=now,
            )
        )
    flag_ids = select(Flag.id).where(col(Flag.exchange_id).in_(ids))
    session.exec(delete(FlagNote).where(col(FlagNote.flag_id).in_(flag_ids)))
    session.exec(delete(Flag).where(col(Flag.exchange_id).in_(ids)))
    session.exec(delete(Vote).where(col(Vote.exchange_id).in_(ids)))
    session.exec(delete(VoteReview).where(col(VoteReview.exchange_id).in_(ids)))
    session.exec(delete(Redaction).where(col(Redaction.exchange_id).in_(ids)))
    session.exec(delete(ExchangeRow).where(col(ExchangeRow.id).in_(ids)))
    session.expunge_all()


def _open_flag_counts(session: Session, ids: Sequence[str]) -> dict[str, int]:
    if not ids:
        return {}
    rows = session.exec(
        select(Flag.exchange_id, func.count())
        .where(col(Flag.exchange_id).in_(ids), Flag.status == "open")
        .group_by(col(Flag.exchange_id))
    ).all()
    return dict(rows)


@dataclass
class _Feedback:
    """Users' votes on one exchange and a moderator's review of the down ones."""

    up: int = 0
    down: int = 0
    last_down: datetime | None = None
    review: VoteReview | None = None

    @property
    def unreviewed(self) -> bool:
        return self.last_down is not None and (
            self.review is None or self.last_down > self.review.reviewed_at
        )


def _feedback(session: Session, ids: Sequence[str]) -> dict[str, _Feedback]:
    """Per exchange id, for those that have votes or a review."""
    if not ids:
        return {}
    found: dict[str, _Feedback] = defaultdict(_Feedback)
    rows = session.exec(
        select(
            Vote.exchange_id,
            func.sum(case((col(Vote.value) > 0, 1), else_=0)),
            func.sum(case((col(Vote.value) < 0, 1), else_=0)),
            func.max(case((col(Vote.value) < 0, col(Vote.updated)), else_=None)),
        )
        .where(col(Vote.exchange_id).in_(ids))
        .group_by(col(Vote.exchange_id))
    ).all()
    for exchange_id, up, down, last_down in rows:
        item = found[exchange_id]
        item.up, item.down = int(up or 0), int(down or 0)
        item.last_down = last_down
    for review in session.exec(select(VoteReview).where(col(VoteReview.exchange_id).in_(ids))):
        found[review.exchange_id].review = review
    return dict(found)


def _reviewed(reviewed: bool) -> ColumnElement[bool]:
    """Has a down vote cast (or changed) after the exchange's review, or with no review at all
    (`reviewed` False); has a review and no such vote (True)."""
    unreviewed = select(Vote.exchange_id).where(
        col(Vote.value) < 0,
        ~exists().where(
            col(VoteReview.exchange_id) == col(Vote.exchange_id),
            col(VoteReview.reviewed_at) >= col(Vote.updated),
        ),
    )
    exchange_id = col(ExchangeRow.id)
    if not reviewed:
        return exchange_id.in_(unreviewed)
    return and_(exchange_id.in_(select(VoteReview.exchange_id)), exchange_id.not_in(unreviewed))


def _moderators(session: Session, tenant: str) -> list[str]:
    accounts = session.exec(select(Moderator).order_by(col(Moderator.name))).all()
    return [a.name for a in accounts if a.admin or tenant in a.tenants]


def _reason(text: str, ask: str) -> str:
    text = text.strip()
    if not text or len(text) > MAX_REASON:
        raise InvalidInputError(f"{ask} (1 to {MAX_REASON:,} characters): it is audited.")
    return text


def _flag_infos(session: Session, flags: Sequence[Flag]) -> list[FlagInfo]:
    notes: dict[int, list[NoteInfo]] = defaultdict(list)
    ids = [flag.id for flag in flags if flag.id is not None]
    if ids:
        for note in session.exec(
            select(FlagNote).where(col(FlagNote.flag_id).in_(ids)).order_by(col(FlagNote.id))
        ).all():
            notes[note.flag_id].append(NoteInfo.model_validate(note, from_attributes=True))
    return [
        FlagInfo.model_validate({**flag.model_dump(), "notes": notes.get(flag.id or 0, [])})
        for flag in flags
    ]


def _summary(
    row: ExchangeRow,
    open_flags: int,
    redaction: Redaction | None = None,
    feedback: _Feedback | None = None,
) -> ExchangeSummary:
    feedback = feedback or _Feedback()
    review = feedback.review
    return ExchangeSummary(
        **{name: getattr(row, name) for name in ExchangeSummary.model_fields if hasattr(row, name)},
        open_flags=open_flags,
        votes_up=feedback.up,
        votes_down=feedback.down,
        unreviewed_down=feedback.unreviewed,
        reviewed_by=review.reviewed_by if review else None,
        reviewed_at=review.reviewed_at if review else None,
        review_reason=review.reason if review else None,
        erased=row.erased_at is not None,
        redacted_by=redaction.redacted_by if redaction else None,
        redacted_at=redaction.redacted_at if redaction else None,
    )


def _redactions(session: Session, ids: Sequence[str]) -> dict[str, Redaction]:
    if not ids:
        return {}
    rows = session.exec(select(Redaction).where(col(Redaction.exchange_id).in_(ids))).all()
    return {row.exchange_id: row for row in rows}


def _mark_redacted(
    session: Session, row: ExchangeRow, actor: str, at: datetime, reason: str
) -> None:
    """Records (or re-records) who redacted a row; `verify` then skips its content hash."""
    redaction = session.get(Redaction, row.id) or Redaction(
        exchange_id=row.id, tenant=row.tenant, redacted_by=actor, redacted_at=at, reason=reason
    )
    redaction.redacted_by, redaction.redacted_at, redaction.reason = actor, at, reason
    session.add(redaction)


def _nearest_rank(ordered: Sequence[float], percent: int) -> float:
    index = max(0, -(-len(ordered) * percent // 100) - 1)
    return ordered[index]


def _details(session: Session, rows: Sequence[ExchangeRow]) -> list[ExchangeDetail]:
    ids = [row.id for row in rows]
    by_exchange: dict[str, list[Flag]] = defaultdict(list)
    if ids:
        for flag in session.exec(
            select(Flag).where(col(Flag.exchange_id).in_(ids)).order_by(col(Flag.id))
        ).all():
            by_exchange[flag.exchange_id].append(flag)
    redactions = _redactions(session, ids)
    feedback = _feedback(session, ids)
    details = []
    for row in rows:
        flags = _flag_infos(session, by_exchange.get(row.id, []))
        scores = {item["passage_id"]: item["score"] for item in row.retrieved}
        sections = {item["passage_id"]: item.get("section", "") for item in row.citations}
        details.append(
            ExchangeDetail(
                **_summary(
                    row,
                    sum(f.status == "open" for f in flags),
                    redactions.get(row.id),
                    feedback.get(row.id),
                ).model_dump(),
                seq=row.seq,
                raw_text=row.raw_text,
                moderation=[Verdict.model_validate(v) for v in row.moderation],
                citations=[
                    CitedPassage(
                        passage_id=c["passage_id"],
                        section=c.get("section", ""),
                        quote=c.get("quote", ""),
                        score=scores.get(c["passage_id"]),
                    )
                    for c in row.citations
                ],
                retrieved=[
                    CitedPassage(
                        passage_id=r["passage_id"],
                        section=sections.get(r["passage_id"], ""),
                        score=r["score"],
                    )
                    for r in row.retrieved
                ],
                prompt_version=row.prompt_version,
                model_id=row.model_id,
                options=row.options,
                prompt=row.prompt,
                timings=Timings(
                    retrieval_ms=row.retrieval_ms,
                    ttft_ms=row.ttft_ms,
                    generation_ms=row.generation_ms,
                    total_ms=row.total_ms,
                ),
                tokens=TokenCounts(prompt=row.prompt_tokens, completion=row.completion_tokens),
                stored_at=row.stored_at,
                row_hash=row.row_hash,
                flags=flags,
            )
        )
    return details
