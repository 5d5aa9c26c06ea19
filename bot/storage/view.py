"""The query layer: every read and every moderator action, always limited to the caller's tenants.

A `LogView` is built with the set of tenants its moderator may see (None means all: an admin).
Every statement goes through `_scope`, so a scoped view cannot read another tenant's rows, not
even by guessing an id: such ids are reported as unknown.
"""

from __future__ import annotations

import logging
import re
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import Engine, and_, case, delete, exists, func, or_
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
)
from bot.storage.chain import Sealer, writing
from bot.storage.engine import writer
from bot.storage.integrity import append_audit as _audit
from bot.storage.integrity import rekey, verify_all
from bot.storage.models import (
    ERASED,
    AuditEntry,
    Ban,
    ExchangeRow,
    Flag,
    FlagNote,
    Redaction,
    SavedFilter,
    Tombstone,
    Vote,
    utcnow,
)

logger = logging.getLogger(__name__)
_ID = re.compile(r"^[0-9A-Za-z_-]{6,64}$")
_BATCH = 500
# What a redacted exchange's question, answer and prompt read afterwards.
REDACTED = "[redacted]"


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
                .order_by(col(ExchangeRow.created).desc(), col(ExchangeRow.id).desc())
                .limit(where.limit)
                .offset(where.offset)
            ).all()
            ids = [row.id for row in rows]
            counts = _open_flag_counts(session, ids)
            redactions = _redactions(session, ids)
            votes = _vote_counts(session, ids)
            items = [
                _summary(
                    row, counts.get(row.id, 0), redactions.get(row.id), votes.get(row.id, (0, 0))
                )
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
            return _vote_counts(session, [row.id]).get(row.id, (0, 0))

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
        """`ModerationStore.flag`: False when the exchange is unknown (or outside the scope)."""
        try:
            self.open_flag(exchange_id, reporter, reason)
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
            flag.assignee, flag.claimed_at = moderator, utcnow()
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

    def release_flag(self, flag_id: int, actor: str) -> FlagInfo:
        """Returns a claimed flag to the unassigned queue."""
        with self._session() as session, session.begin():
            flag = self._flag(session, flag_id)
            previous = flag.assignee
            flag.assignee, flag.claimed_at = None, None
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
            originals = [text for text in (row.input_text, row.reply_text) if text.strip()]
            row.input_text, row.reply_text, row.prompt = REDACTED, REDACTED, REDACTED
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
                prompt = other.prompt
                for text in originals:
                    prompt = prompt.replace(text, REDACTED)
                if prompt != other.prompt:
                    other.prompt = prompt
                    session.add(other)
                    _mark_redacted(session, other, actor, now, f"quoted redacted exchange {row.id}")
                    scrubbed.append(other.id)
            _audit(
                session,
                actor,
                "redact",
                row.tenant,
                row.id,
                {
                    "reason": reason,
                    "fields": ["input_text", "reply_text", "prompt"],
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

    def purge(self, older_than: timedelta, actor: str) -> int:
        """Deletes exchanges created before now - `older_than`, with their flags; keeps tombstones."""
        if older_than <= timedelta(0):
            raise InvalidInputError("The retention period must be positive.")
        cutoff = utcnow() - older_than
        removed = 0
        with self._session() as session, session.begin():
            stmt = self._scope(select(ExchangeRow), col(ExchangeRow.tenant)).where(
                col(ExchangeRow.created) < cutoff
            )
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
        """Forgets one platform user: their exchanges go, except flagged ones, which stay with the
        user's id and name replaced by a placeholder; their reports and bans are anonymised/lifted."""
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
            for row in kept:
                row.user_id = ERASED
                row.user_name = ERASED
                row.erased_at = now
                session.add(row)
            for batch in _batches([row for row in rows if row.id not in flagged]):
                _remove(session, batch, "erasure")
            reports = self._scope(select(Flag), col(Flag.tenant)).where(
                Flag.reporter == user_id,
                exists().where(
                    col(ExchangeRow.id) == col(Flag.exchange_id),
                    col(ExchangeRow.platform) == platform,
                ),
            )
            if tenant is not None:
                reports = reports.where(Flag.tenant == tenant)
            flags = session.exec(reports).all()
            for flag in flags:
                flag.reporter = ERASED
                session.add(flag)
            bans = self._scope(select(Ban), col(Ban.tenant)).where(
                Ban.platform == platform, Ban.user_id == user_id
            )
            if tenant is not None:
                bans = bans.where(Ban.tenant == tenant)
            lifted = session.exec(bans).all()
            for ban in lifted:
                session.delete(ban)
            audited = self._scope(select(AuditEntry), col(AuditEntry.tenant)).where(
                AuditEntry.target == f"{platform}:{user_id}"
            )
            for entry in session.exec(audited).all():
                entry.target = f"{platform}:{ERASED}"
                session.add(entry)
            report = ErasureReport(
                exchanges_deleted=len(rows) - len(kept),
                exchanges_anonymised=len(kept),
                flags_anonymised=len(flags),
                bans_lifted=len(lifted),
            )
            _audit(
                session, actor, "erase-user", tenant, f"{platform}:{ERASED}", report.model_dump()
            )
        return report

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
        if where.flagged is not None:
            has_open = exists().where(
                col(Flag.exchange_id) == col(ExchangeRow.id), col(Flag.status) == "open"
            )
            conditions.append(has_open if where.flagged else ~has_open)
        if where.voted is not None:
            conditions.append(
                exists().where(
                    col(Vote.exchange_id) == col(ExchangeRow.id),
                    col(Vote.value) == (1 if where.voted == "up" else -1),
                )
            )
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
        stmt = self._scope(select(Flag), col(Flag.tenant)).where(Flag.id == flag_id)
        flag = session.exec(stmt).first()
        if flag is None:
            raise NotFoundError(f"No flag {flag_id}.")
        return flag


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


def _vote_counts(session: Session, ids: Sequence[str]) -> dict[str, tuple[int, int]]:
    """(up, down) per exchange id, for those that have votes."""
    if not ids:
        return {}
    rows = session.exec(
        select(
            Vote.exchange_id,
            func.sum(case((col(Vote.value) > 0, 1), else_=0)),
            func.sum(case((col(Vote.value) < 0, 1), else_=0)),
        )
        .where(col(Vote.exchange_id).in_(ids))
        .group_by(col(Vote.exchange_id))
    ).all()
    return {exchange_id: (int(up or 0), int(down or 0)) for exchange_id, up, down in rows}


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
    votes: tuple[int, int] = (0, 0),
) -> ExchangeSummary:
    return ExchangeSummary(
        **{name: getattr(row, name) for name in ExchangeSummary.model_fields if hasattr(row, name)},
        open_flags=open_flags,
        votes_up=votes[0],
        votes_down=votes[1],
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
    votes = _vote_counts(session, ids)
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
                    votes.get(row.id, (0, 0)),
                ).model_dump(),
                seq=row.seq,
                raw_text=row.raw_text,
                platform_message_id=row.platform_message_id,
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
