"""Tamper evidence: per-tenant hash chains of exchanges, one chain of the audit trail, and a keyed
seal on every row moderators rely on.

Each exchange keeps `content_hash` (a digest of what it held when stored) and `row_hash`, which
binds that digest to its tenant, position and predecessor, so a deleted, inserted or reordered
row breaks the chain. `seal` is a MAC over what the row holds *now*: legitimate changes
(redaction, erasure, a resolved flag) are re-sealed by the code that makes them, so nothing is
exempt from checking, and a change made behind the product's back shows. With
`PERSONABOT_LOG_KEY` set, every digest is an HMAC-SHA256 under that key, which lives outside the
database: someone who can write to the database but does not hold the key cannot recompute
them. Without a key the digests are plain SHA-256, which catches accidents, not forgers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlmodel import Session, SQLModel

from bot.storage.models import (
    AuditEntry,
    Ban,
    Erasure,
    ExchangeRow,
    Flag,
    FlagNote,
    Redaction,
    Tombstone,
    Vote,
    VoteReview,
)

logger = logging.getLogger(__name__)

# The fields an exchange's content hash covers: everything a moderator reads, nothing the chain
# adds. Delivery (`platform_message_id`, `permalink`, `delivery`) is set after the row is chained
# and is left out of both the content hash and the seal on purpose: it says where the reply went,
# not what was said.
HASHED_FIELDS = (
    "id",
    "tenant",
    "platform",
    "channel",
    "thread",
    "user_id",
    "user_name",
    "input_text",
    "reply_text",
    "refused",
    "grounded",
    "moderation",
    "citations",
    "retrieved",
    "prompt_version",
    "model_id",
    "options",
    "prompt",
    "retrieval_ms",
    "ttft_ms",
    "generation_ms",
    "total_ms",
    "prompt_tokens",
    "completion_tokens",
    "created",
)
# Version 2 (rev 0004 on) adds these; older rows keep the hash they were stored with.
HASHED_FIELDS_V2 = (*HASHED_FIELDS, "hash_version", "kind", "raw_text")
# What an exchange's seal covers beyond its content: its place in the chain and its erasure.
SEALED_EXCHANGE_FIELDS = (
    *HASHED_FIELDS_V2,
    "seq",
    "prev_hash",
    "content_hash",
    "row_hash",
    "erased_at",
    "stored_at",
    "conversation_id",
    "key_id",
)
# Columns never covered by a row's own seal (a numeric id is assigned only after sealing).
UNSEALED = frozenset({"id", "seal", "platform_message_id", "permalink", "delivery"})
# Columns added to sealed tables after revision 0005: covered only once set, so the seals of
# rows written before them (which hold None there) still hold.
SEALED_WHEN_SET = frozenset({"assigned_by"})
SEALED_TABLES: dict[type[SQLModel], str] = {
    ExchangeRow: "exchanges",
    Tombstone: "tombstones",
    Flag: "flags",
    FlagNote: "flag_notes",
    Vote: "votes",
    Ban: "bans",
    AuditEntry: "audit",
    Redaction: "redactions",
    Erasure: "erasures",
    VoteReview: "vote_reviews",
}
_FLOATS = ("retrieval_ms", "ttft_ms", "generation_ms", "total_ms")


def best_score(retrieved: Iterable[dict[str, Any]]) -> float | None:
    """An exchange's `top_score`: the highest score among its retrieved passages. It is left
    out of the content hash and the seal because `retrieved`, which both cover, determines it;
    `verify` recomputes it instead."""
    scores = [float(item["score"]) for item in retrieved if item.get("score") is not None]
    return max(scores, default=None)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return value


def _canonical(payload: dict[str, Any]) -> bytes:
    for name in _FLOATS:
        if name in payload:
            payload[name] = float(payload[name])  # a REAL column may hand back 0 for 0.0
    return json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


def content_hash(row: ExchangeRow) -> str:
    """Plain SHA-256 of an exchange's content as stored; identical on SQLite and PostgreSQL."""
    fields = HASHED_FIELDS if row.hash_version == 1 else HASHED_FIELDS_V2
    payload = {name: _plain(getattr(row, name)) for name in fields}
    return hashlib.sha256(_canonical(payload)).hexdigest()


def link_hash(tenant: str, seq: int, prev_hash: str, content: str) -> str:
    """The unkeyed link of rows stored before the chain had a key (see `Sealer.link`)."""
    return hashlib.sha256(f"{tenant}\n{seq}\n{prev_hash}\n{content}".encode()).hexdigest()


class Sealer:
    """Computes links and seals, keyed when a key is given; `key_id` names the key (never the
    key itself) so rows sealed under another key are told apart from forged ones."""

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key or None
        self.key_id = (
            hmac.new(self._key, b"personabot log key id", hashlib.sha256).hexdigest()[:16]
            if self._key
            else ""
        )

    @property
    def keyed(self) -> bool:
        return self._key is not None

    def digest(self, blob: bytes) -> str:
        if self._key is None:
            return hashlib.sha256(blob).hexdigest()
        return hmac.new(self._key, blob, hashlib.sha256).hexdigest()

    def link(self, chain: str, seq: int, prev_hash: str, content: str) -> str:
        """Binds a row to its chain (a tenant, or the audit trail), position and predecessor."""
        return self.digest(f"link\n{chain}\n{seq}\n{prev_hash}\n{content}".encode())

    def seal(self, table: str, values: dict[str, Any]) -> str:
        """A MAC over everything a row holds now (`values`: its columns), named by its table."""
        names: Iterable[str] = (
            SEALED_EXCHANGE_FIELDS
            if table == "exchanges"
            else (
                n
                for n in values
                if n not in UNSEALED and not (n in SEALED_WHEN_SET and values[n] is None)
            )
        )
        payload = {name: _plain(values[name]) for name in names}
        payload["table"] = table
        return self.digest(b"seal\n" + _canonical(payload))

    def seal_row(self, row: SQLModel) -> None:
        """Stamps a row with this key's id and its seal."""
        table = SEALED_TABLES[type(row)]
        row.key_id = self.key_id
        row.seal = self.seal(table, columns(row))

    def sealed(self, row: SQLModel) -> bool:
        """True when the row's seal is this key's and matches what the row holds."""
        values = columns(row)
        return values.get("key_id") == self.key_id and matches(
            values.get("seal"), self.seal(SEALED_TABLES[type(row)], values)
        )


def matches(expected: str | None, actual: str) -> bool:
    return expected is not None and hmac.compare_digest(expected, actual)


def columns(row: SQLModel) -> dict[str, Any]:
    return {attr.key: getattr(row, attr.key) for attr in inspect(type(row)).column_attrs}


def writing(session: Session, sealer: Sealer) -> Session:
    """Marks a session as one whose sealed rows are (re-)sealed with `sealer` when flushed."""
    session.info["sealer"] = sealer
    return session


@event.listens_for(Session, "before_flush")
def _seal_on_flush(session: Session, _context: object, _instances: object) -> None:
    """Seals new rows and re-seals changed ones; a changed row whose seal did not hold before
    the change keeps its old seal, so a legitimate edit never launders a forged one."""
    if session.info.get("rekeying"):
        return
    for row in [*session.new, *session.dirty]:
        table = SEALED_TABLES.get(type(row))
        if table is None:
            continue
        sealer: Sealer | None = session.info.get("sealer")
        if sealer is None:
            raise RuntimeError(f"a {table} row was written by a session without a Sealer")
        if row not in session.new:
            if not session.is_modified(row):
                continue
            original = {**columns(row), **inspect(row).committed_state}
            if original.get("key_id") != sealer.key_id or not matches(
                original.get("seal"), sealer.seal(table, original)
            ):
                logger.warning("not re-sealing %s row %s: its seal did not hold", table, row)
                continue
        sealer.seal_row(row)
