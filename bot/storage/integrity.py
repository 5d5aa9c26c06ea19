"""Appending to the audit trail's chain, checking every chain and seal, and re-keying the log.

`verify_all` reports, per tenant, the first exchange that was edited, inserted, deleted or moved;
then (for an admin) the first broken entry of the audit trail and the first row of each sealed
table (flags, notes, votes, bans, redactions, erasures, vote reviews) whose seal does not hold.
Nothing is exempt: redacted and erased rows were re-sealed by the code that changed them.

Limits, said plainly in docs/moderation-log.md: deleting the *last* rows of a chain together
with rewinding its head row is not detectable from inside the database, and a deleted flag,
note, vote, vote review or ban is not detected (each is created under an audit entry, which is
chained).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel, col, select

from bot.storage.api import ChainReport, InvalidInputError
from bot.storage.chain import (
    SEALED_TABLES,
    Sealer,
    best_score,
    columns,
    content_hash,
    link_hash,
)
from bot.storage.models import (
    AUDIT_CHAIN,
    GENESIS_HASH,
    AuditEntry,
    Ban,
    ChainHead,
    Erasure,
    ExchangeRow,
    Flag,
    FlagNote,
    Redaction,
    Tombstone,
    Vote,
    VoteReview,
    utcnow,
)

# Tables whose rows are sealed one by one (tombstones are checked within their chain).
LOOSE_TABLES: tuple[type[SQLModel], ...] = (
    Flag,
    FlagNote,
    Vote,
    Ban,
    Redaction,
    Erasure,
    VoteReview,
)
_UNSEALED = (
    "is not sealed (stored before revision 0005, or its seal was removed): "
    "check it, then run `personabot logs rekey`"
)


def lock_head(session: Session, chain: str) -> ChainHead:
    """A chain's head, locked until commit (FOR UPDATE; SQLite holds the write lock)."""
    stmt = select(ChainHead).where(ChainHead.tenant == chain).with_for_update()
    head = session.exec(stmt).first()
    if head is None:
        try:
            with session.begin_nested():
                session.add(ChainHead(tenant=chain, seq=0, row_hash=GENESIS_HASH))
        except IntegrityError:  # another process started this chain first
            pass
        head = session.exec(stmt.execution_options(populate_existing=True)).one()
    return head


def append_audit(
    session: Session,
    actor: str,
    action: str,
    tenant: str | None,
    target: str,
    detail: dict[str, Any],
) -> AuditEntry:
    """Appends one moderator action to the audit trail's chain (sealed when flushed)."""
    sealer: Sealer = session.info["sealer"]
    head = lock_head(session, AUDIT_CHAIN)
    entry = AuditEntry(
        at=utcnow(), actor=actor, action=action, tenant=tenant, target=target, detail=detail
    )
    entry.content_hash = sealer.seal("audit", columns(entry))
    entry.prev_hash = head.row_hash
    entry.row_hash = sealer.link(AUDIT_CHAIN, 0, head.row_hash, entry.content_hash)
    head.seq, head.row_hash = head.seq + 1, entry.row_hash
    session.add(head)
    session.add(entry)
    return entry


class _BrokenError(Exception):
    def __init__(self, row: str | None, problem: str, seq: int | None = None) -> None:
        super().__init__(problem)
        self.row, self.problem, self.seq = row, problem, seq


def verify_all(
    session: Session, sealer: Sealer, tenants: frozenset[str] | None, legacy: bool = False
) -> list[ChainReport]:
    """`legacy`: also accept rows stored before seals existed, checked the old (unkeyed) way."""
    stmt = select(ChainHead).where(ChainHead.tenant != AUDIT_CHAIN)
    if tenants is not None:
        stmt = stmt.where(col(ChainHead.tenant).in_(sorted(tenants)))
    heads = session.exec(stmt.order_by(col(ChainHead.tenant))).all()
    reports = [
        _report("exchanges", h.tenant, sealer, _exchanges, session, h, sealer, legacy)
        for h in heads
    ]
    if tenants is None:
        reports.append(_report("audit", "", sealer, _audit_chain, session, sealer, legacy))
        for model in LOOSE_TABLES:
            reports.append(
                _report(SEALED_TABLES[model], "", sealer, _loose, session, model, sealer, legacy)
            )
    return reports


def _report(table: str, tenant: str, sealer: Sealer, check: Any, *args: Any) -> ChainReport:
    """Runs one check; it returns how many rows it checked or raises `_BrokenError` at the first
    bad one (with how many were fine before it)."""
    progress = [0]
    try:
        checked = check(progress, *args)
    except _BrokenError as broken:
        return ChainReport(
            table=table,
            tenant=tenant,
            checked=progress[0],
            ok=False,
            keyed=sealer.keyed,
            broken_seq=broken.seq,
            exchange_id=broken.row if table == "exchanges" else None,
            row=broken.row,
            problem=broken.problem,
        )
    return ChainReport(table=table, tenant=tenant, checked=checked, ok=True, keyed=sealer.keyed)


def _links(session: Session, tenant: str) -> Iterator[tuple[int, Tombstone | ExchangeRow]]:
    """The tenant's exchanges and tombstones, merged in `seq` order."""
    tombs = sorted(
        (t.seq, t) for t in session.exec(select(Tombstone).where(Tombstone.tenant == tenant))
    )
    rows = session.exec(
        select(ExchangeRow)
        .where(ExchangeRow.tenant == tenant)
        .order_by(col(ExchangeRow.seq))
        .execution_options(yield_per=1000)
    )
    index = 0
    for row in rows:
        while index < len(tombs) and tombs[index][0] < row.seq:
            yield tombs[index]
            index += 1
        yield row.seq, row
    yield from tombs[index:]


def _exchanges(
    progress: list[int], session: Session, head: ChainHead, sealer: Sealer, legacy: bool
) -> int:
    tenant = head.tenant
    redacted = set(
        session.exec(select(Redaction.exchange_id).where(Redaction.tenant == tenant)).all()
    )
    expected, previous, sealed_seen = 1, GENESIS_HASH, False
    for seq, item in _links(session, tenant):
        name = item.exchange_id if isinstance(item, Tombstone) else item.id
        where = "tombstone" if isinstance(item, Tombstone) else "exchange"
        if seq != expected:
            raise _BrokenError(None, f"row {expected} is missing (next present is {seq})", expected)
        if item.prev_hash != previous:
            raise _BrokenError(
                name, f"{where} does not link to the previous row (moved or replaced)", seq
            )
        if item.seal is None:
            if not legacy or sealed_seen:
                raise _BrokenError(name, f"{where} {_UNSEALED}", seq)
            edited = (
                isinstance(item, ExchangeRow)
                and item.erased_at is None
                and item.id not in redacted
                and content_hash(item) != item.content_hash
            )
            if edited:
                raise _BrokenError(name, "content was edited after it was stored", seq)
            if link_hash(tenant, seq, item.prev_hash, item.content_hash) != item.row_hash:
                raise _BrokenError(name, "row hash does not match (moved or rewritten)", seq)
        else:
            sealed_seen = True
            _check_key(item, sealer, name, seq)
            linked = sealer.link(tenant, seq, item.prev_hash, item.content_hash)
            old_link = link_hash(tenant, seq, item.prev_hash, item.content_hash)
            if item.row_hash != linked and not (legacy and item.row_hash == old_link):
                raise _BrokenError(
                    name,
                    f"{where}'s row hash does not match (moved, or rehashed without the key)",
                    seq,
                )
            if not sealer.sealed(item):
                raise _BrokenError(
                    name, f"{where} was changed after it was stored (seal mismatch)", seq
                )
        if isinstance(item, ExchangeRow) and item.top_score != best_score(item.retrieved):
            raise _BrokenError(
                name, "exchange's score column does not match its retrieved passages", seq
            )
        previous, expected = item.row_hash, expected + 1
        progress[0] += 1
    if head.seq != expected - 1 or head.row_hash != previous:
        raise _BrokenError(
            None, f"rows after {expected - 1} are missing (chain head is {head.seq})", expected
        )
    return progress[0]


def _check_key(row: Any, sealer: Sealer, name: str | None, seq: int | None = None) -> None:
    if row.key_id != sealer.key_id:
        raise _BrokenError(
            name,
            f"sealed with key {row.key_id or '(none)'}, not the configured key "
            f"{sealer.key_id or '(none)'}: set PERSONABOT_LOG_KEY, or run `personabot logs rekey`",
            seq,
        )


def _audit_chain(progress: list[int], session: Session, sealer: Sealer, legacy: bool) -> int:
    previous, sealed_seen, count = GENESIS_HASH, False, 0
    entries = session.exec(
        select(AuditEntry).order_by(col(AuditEntry.id)).execution_options(yield_per=1000)
    )
    for entry in entries:
        name = f"id {entry.id}"
        if entry.seal is None:
            if not legacy or sealed_seen:
                raise _BrokenError(name, f"audit entry {_UNSEALED}")
        else:
            sealed_seen = True
            count += 1
            _check_key(entry, sealer, name)
            if entry.prev_hash != previous:
                raise _BrokenError(
                    name, "audit entry does not follow the one before it (one deleted or inserted)"
                )
            if entry.content_hash is None or entry.row_hash != sealer.link(
                AUDIT_CHAIN, 0, entry.prev_hash, entry.content_hash
            ):
                raise _BrokenError(
                    name, "audit entry's row hash does not match (rehashed without the key)"
                )
            if not sealer.sealed(entry):
                raise _BrokenError(
                    name, "audit entry was changed after it was written (seal mismatch)"
                )
            previous = entry.row_hash
        progress[0] += 1
    head = session.get(ChainHead, AUDIT_CHAIN)
    if sealed_seen and (head is None or head.row_hash != previous or head.seq != count):
        raise _BrokenError(None, "audit entries after the last one present are missing")
    return progress[0]


def _loose(
    progress: list[int], session: Session, model: type[SQLModel], sealer: Sealer, legacy: bool
) -> int:
    table = SEALED_TABLES[model]
    for row in session.exec(select(model).execution_options(yield_per=1000)):
        values = columns(row)
        name = str(values.get("id", values.get("exchange_id")))
        if values["seal"] is None:
            if not legacy:
                raise _BrokenError(name, f"{table} row {_UNSEALED}")
        else:
            _check_key(row, sealer, name)
            if not sealer.sealed(row):
                raise _BrokenError(
                    name, f"{table} row was changed behind the product's back (seal mismatch)"
                )
        progress[0] += 1
    return progress[0]


def rekey(session: Session, old: Sealer, new: Sealer, actor: str) -> int:
    """Re-links and re-seals every row under `new` once everything holds under `old`."""
    broken = [r for r in verify_all(session, old, None, legacy=True) if not r.ok]
    if broken:
        first = broken[0]
        where = f"{first.table}{' of ' + first.tenant if first.tenant else ''}"
        raise InvalidInputError(
            f"Not re-keying: {where} row {first.row or first.broken_seq} {first.problem}. "
            "Check the old key (PERSONABOT_LOG_OLD_KEY)."
        )
    session.info["rekeying"] = True
    count = 0
    heads = session.exec(select(ChainHead).where(ChainHead.tenant != AUDIT_CHAIN)).all()
    for head in heads:
        previous = GENESIS_HASH
        for seq, item in list(_links(session, head.tenant)):
            item.prev_hash = previous
            item.row_hash = new.link(head.tenant, seq, previous, item.content_hash)
            new.seal_row(item)
            session.add(item)
            previous = item.row_hash
            count += 1
        head.row_hash = previous
        session.add(head)
    head = lock_head(session, AUDIT_CHAIN)
    previous, entries = GENESIS_HASH, 0
    for entry in session.exec(select(AuditEntry).order_by(col(AuditEntry.id))).all():
        if entry.content_hash is None:
            entry.content_hash = new.seal("audit", columns(entry))
        entry.prev_hash = previous
        entry.row_hash = new.link(AUDIT_CHAIN, 0, previous, entry.content_hash)
        new.seal_row(entry)
        session.add(entry)
        previous, entries = entry.row_hash, entries + 1
    head.seq, head.row_hash = entries, previous
    session.add(head)
    count += entries
    for model in LOOSE_TABLES:
        rows: Sequence[SQLModel] = session.exec(select(model)).all()
        for row in rows:
            new.seal_row(row)
            session.add(row)
        count += len(rows)
    session.flush()
    session.info["sealer"] = new
    entry = append_audit(
        session, actor, "rekey", None, "", {"from": old.key_id, "to": new.key_id, "rows": count}
    )
    new.seal_row(entry)
    return count
