"""The per-tenant hash chain that makes edits, deletions and reorderings of exchanges visible."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from bot.storage.models import ExchangeRow

# The fields a row's content hash covers: everything a moderator reads, nothing the chain adds.
# Delivery (`platform_message_id`, `permalink`, `delivery`) is set after the row is chained and
# is left out on purpose: it says where the reply went, not what was said.
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


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(timespec="microseconds")
    return value


def content_hash(row: ExchangeRow) -> str:
    """SHA-256 over a canonical JSON of the row's content, identical on SQLite and PostgreSQL."""
    fields = HASHED_FIELDS if row.hash_version == 1 else HASHED_FIELDS_V2
    payload = {name: _plain(getattr(row, name)) for name in fields}
    for name in ("retrieval_ms", "ttft_ms", "generation_ms", "total_ms"):
        payload[name] = float(payload[name])  # a REAL column may hand back 0 for 0.0
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def link_hash(tenant: str, seq: int, prev_hash: str, content: str) -> str:
    """Binds a row to its place (tenant, position) and to its predecessor."""
    return hashlib.sha256(f"{tenant}\n{seq}\n{prev_hash}\n{content}".encode()).hexdigest()
