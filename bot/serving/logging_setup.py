"""Structured JSON logs with request ids, secrets redacted and message bodies left out by default.

Operators ship these lines to any log store; a moderator reads bodies in the conversation log,
which has access control, so bodies reach the process log only when LOG_MESSAGE_BODIES is set.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import uuid
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import IO, Any
from urllib.parse import urlsplit

from bot.messages import Exchange
from bot.settings import Settings

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
_RESERVED = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
REDACTED = "[redacted]"


@contextlib.contextmanager
def request_context(rid: str | None = None) -> Iterator[str]:
    """Tags every log line written inside (in this task or thread) with one request id."""
    token = request_id.set(rid or uuid.uuid4().hex[:16])
    try:
        yield request_id.get() or ""
    finally:
        request_id.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object a line; `extra={...}` fields become top-level keys."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        entry.update({k: v for k, v in vars(record).items() if k not in _RESERVED})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class RedactingFilter(logging.Filter):
    """Replaces every known secret value wherever it would appear in a formatted line."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)

    def _clean(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            record.msg = self._clean(record.getMessage())
            record.args = None
            for key, value in list(vars(record).items()):
                if key not in _RESERVED and isinstance(value, str):
                    setattr(record, key, self._clean(value))
        return True


def secrets_of(settings: Settings) -> list[str]:
    """The API key and any passwords inside the database and Redis URLs."""
    found = []
    if settings.inference_api_key:
        found.append(settings.inference_api_key.get_secret_value())
    for url in (settings.database_url, settings.redis_url):
        password = urlsplit(url).password if url else None
        if password:
            found.append(password)
    return found


def configure_logging(
    settings: Settings, extra_secrets: Iterable[str] = (), stream: IO[str] | None = None
) -> logging.Handler:
    """Replaces the root handlers with one JSON (or plain text) handler; returns it for tests."""
    handler = logging.StreamHandler(stream or sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter([*secrets_of(settings), *extra_secrets]))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    return handler


def exchange_fields(exchange: Exchange, include_bodies: bool = False) -> dict[str, Any]:
    """What an exchange's log line carries: ids, outcome, timings; the texts only when enabled."""
    message, reply = exchange.message, exchange.reply
    fields: dict[str, Any] = {
        "exchange_id": exchange.id,
        "platform": message.platform,
        "tenant": message.tenant,
        "channel": message.channel,
        "user_id": message.user_id,
        "refused": reply.refused,
        "grounded": reply.grounded,
        "citations": [c.passage_id for c in reply.citations],
        "total_ms": round(reply.timings.total_ms, 1),
        "ttft_ms": round(reply.timings.ttft_ms, 1),
        "prompt_tokens": reply.tokens.prompt,
        "completion_tokens": reply.tokens.completion,
        "model_id": exchange.trace.model_id,
    }
    if include_bodies:
        fields["question"] = message.text
        fields["answer"] = reply.text
    return fields
