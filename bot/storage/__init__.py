"""The moderators' conversation log: every exchange stored, reviewable, erasable, never lost.

Start with `open_log(settings)`; it returns a `SqlConversationLog`, which records exchanges for
the core, answers the adapters' `ModerationStore` calls, and offers the query API (`LogView`)
that the `personabot logs` CLI and the dashboard build on. See docs/moderation-log.md.
"""

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
from bot.storage.log import SqlConversationLog, open_log
from bot.storage.redaction import Redactor
from bot.storage.view import LogView

__all__ = [
    "AuditInfo",
    "BanInfo",
    "ChainReport",
    "CitedPassage",
    "DayLatency",
    "DayStats",
    "ErasureReport",
    "ExchangeDetail",
    "ExchangeFilter",
    "ExchangeSummary",
    "FlagInfo",
    "ForbiddenError",
    "InvalidInputError",
    "LogView",
    "NotFoundError",
    "NoteInfo",
    "Page",
    "Redactor",
    "SavedFilterInfo",
    "SqlConversationLog",
    "VoteInfo",
    "open_log",
]
