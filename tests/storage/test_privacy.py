"""Erasure and redaction reach everything the log keeps, on SQLite and PostgreSQL (issue 16).

Each test searches every table, the spool and an export, in every normal form, for what must be
gone: not only the columns the feature was written for.
"""

from __future__ import annotations

import json
import re
import unicodedata
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import MetaData, select

from bot.messages import Verdict
from bot.storage import SqlConversationLog
from bot.storage.models import ERASED
from tests.storage.conftest import exchange

ZED, NAME = "u-zed-4821", "Zed Quill"
_HEX = re.compile(r"\b[0-9a-f]{16,}\b")


def _folded(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).casefold()
    return " ".join("".join(c for c in plain if not unicodedata.combining(c)).split())


def everything(store: SqlConversationLog) -> str:
    """Every cell of every table, every spool file and a full export, as one searchable text."""
    tables = MetaData()
    tables.reflect(store.engine)
    parts = []
    with store.engine.connect() as conn:
        for table in tables.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(json.dumps([str(v) for v in row], ensure_ascii=False))
    if store.spool.directory.is_dir():
        parts += [p.read_text(encoding="utf-8") for p in store.spool.directory.iterdir()]
    parts += [detail.model_dump_json() for detail in store.iter_exchanges()]
    # Ids, hashes and seals are hex: a digit run found inside one is chance, not a leak.
    return _folded(_HEX.sub(" ", "\n".join(parts).replace("\\n", " ")))


def test_erasure_leaves_no_trace_of_the_user_anywhere(store: SqlConversationLog) -> None:
    start = datetime.now(UTC) - timedelta(minutes=10)
    first = exchange(
        "my codeword is zanzibar, reach me at zed@mail.example",
        user_id=ZED,
        received_at=start,
    )
    first.message.user_name = NAME
    first.message.raw_text = "<@999> my codeword is zanzibar"
    kept = exchange("is NATO a threat to quokkas?", user_id=ZED, received_at=start + timedelta(1))
    kept.message.user_name = NAME
    kept.trace.prompt = "Earlier question: my codeword is zanzibar, reach me at [email redacted]"
    other = exchange(f"what did {NAME} mean?", user_id="u-ana", received_at=start + timedelta(2))
    other.message.raw_text = f"<@{ZED}> what did {NAME} mean?"
    other.trace.prompt = (
        f"Earlier question: my codeword is zanzibar\nQuestion: what did {NAME} mean?"
    )
    other.reply.moderation = [Verdict(check="scope", passed=False, detail="unknown zanzibar")]
    later = exchange("from zed, still waiting in the spool", user_id=ZED, received_at=start)
    for item in (first, kept, other):
        store.record(item)
    store.spool._append(store.spool.directory / "rejected.jsonl", later.model_dump_json() + "\n")

    assert store.flag(kept.id, "discord:u-ana", "off topic")
    assert store.flag(other.id, f"discord:{ZED}", f"{NAME} says this is wrong")
    assert store.vote(other.id, f"discord:{ZED}", -1)
    store.ban("discord", "guild-1", ZED, "mod", f"{NAME} spams")
    flag_on_kept = store.flags()[-1]
    store.add_note(flag_on_kept.id, "mod", f"talked to {NAME} about it")

    report = store.erase_user("discord", ZED, "admin")

    assert (report.exchanges_deleted, report.exchanges_anonymised) == (1, 1)
    assert (report.flags_anonymised, report.votes_deleted, report.bans_lifted) == (1, 1, 1)
    assert report.spooled_dropped == 1
    found = everything(store)
    for gone in (ZED, NAME, "zanzibar", "zed@mail"):
        assert _folded(gone) not in found, gone
    assert ERASED in found
    # The flagged question stays as the moderation record it is, under the placeholder.
    shown = store.get_exchange(kept.id)
    assert (shown.input_text, shown.user_id, shown.user_name) == (kept.message.text, ERASED, ERASED)
    assert store.votes(other.id) == (0, 0)
    assert all(r.ok for r in store.verify()), [r for r in store.verify() if not r.ok]

    # A process that spooled the user's exchange before the erasure replays it afterwards.
    store._write(later)
    assert store.list_exchanges().total == 2
    assert _folded(ZED) not in everything(store)
    # Someone who comes back after being erased is a new conversation partner.
    fresh = exchange("hello again", user_id=ZED)
    store.record(fresh)
    assert store.get_exchange(fresh.id).user_id == ZED


def test_erasure_matches_slack_reporters_of_any_workspace(store: SqlConversationLog) -> None:
    mine, theirs = (
        exchange("q", platform="slack", tenant="T1", user_id="U1"),
        exchange("q2", platform="slack", tenant="T1", user_id="U2"),
    )
    store.record(mine)
    store.record(theirs)
    assert store.flag(theirs.id, "slack:T1:U1", "my report")
    assert store.vote(theirs.id, "slack:T1:U1", 1)
    assert store.flag(theirs.id, "slack:T1:U11", "someone else's")
    report = store.erase_user("slack", "U1", "admin")
    assert (report.flags_anonymised, report.votes_deleted) == (1, 1)
    reporters = sorted(f.reporter for f in store.flags())
    assert reporters == [ERASED, "slack:T1:U11"]


def test_redaction_leaves_no_fragment_in_any_form(store: SqlConversationLog) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    secret = exchange(
        "my codeword is plum, call 0044 7946 0958 or erin@mail.example.com", received_at=start
    )
    secret.reply.moderation = [
        Verdict(
            check="scope",
            passed=False,
            detail="unknown codeword, plum, 0044, 0958, 7946, erin, exampl, mail",
        )
    ]
    follow = exchange("and then?", received_at=start + timedelta(seconds=1))
    follow.trace.prompt = (
        "Earlier question: my  ｃｏｄｅｗｏｒｄ is\tplum, call [phone redacted]\nQ: and then?"
    )
    store.record(secret)
    store.record(follow)
    stored = store.get_exchange(secret.id)
    assert stored.moderation[0].detail.count("[redacted]") == 6  # the address and number's words
    assert "codeword" in stored.moderation[0].detail  # not yet: a moderator has not redacted it
    store.open_flag(secret.id, "mod", "quotes 'my codeword is plum, call [phone redacted]'")

    store.redact(secret.id, "mod", "private")

    found = everything(store)
    for fragment in ("codeword", "plum", "0044", "7946", "erin", "exampl"):
        assert fragment not in found, fragment
    assert store.get_exchange(follow.id).prompt.endswith("Q: and then?")
    assert all(r.ok for r in store.verify())


def test_non_ascii_addresses_and_oversize_input_are_not_stored(store: SqlConversationLog) -> None:
    sent = exchange("write to josé@correo.es or 用户@例子.中国 " + "x" * 100_000)
    sent.message.raw_text = "<@1> josé@correo.es"
    store.record(sent)
    stored = store.get_exchange(sent.id)
    assert "josé" not in everything(store) and "用户" not in everything(store)
    assert stored.input_text.startswith("write to [email redacted] or [email redacted] x")
    assert len(stored.input_text) < 8_100 and stored.input_text.endswith("characters]")
    assert len(stored.prompt) < 4 * 8_000 + 100


def test_spool_and_database_files_are_private(store: SqlConversationLog, tmp_path: Path) -> None:
    store.spool.append(exchange())
    [spooled] = list(store.spool.directory.glob("spool-*"))
    assert spooled.stat().st_mode & 0o077 == 0
    database = tmp_path / "log.db"
    if database.exists():  # the SQLite run
        assert database.stat().st_mode & 0o077 == 0
