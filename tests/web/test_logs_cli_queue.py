"""CLI parity with the dashboard's queue: `personabot logs flags|bans|redact|votes|unanswered`
and `--ungrounded` meaning what the dashboard's filter means, through typer's CliRunner."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from adapters import logs_cli
from adapters.cli import app
from bot.errors import PersonabotError
from bot.messages import ReplyKind, RetrievedPassage
from bot.settings import load_settings
from bot.storage import open_log
from bot.storage.accounts import ModeratorAccounts
from tests.storage.conftest import exchange
from tests.web.browsing import record
from tests.web.conftest import FAST_HASHER, PASSWORDS

runner = CliRunner()


@pytest.fixture
def ids(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("PERSONABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    log = open_log(load_settings())
    made = {
        "answer": record(log, "Why NATO?", "Because.", ReplyKind.ANSWER, model_tokens=9),
        "pizza1": record(log, "Best pizza?", "Not in my essay.", ReplyKind.OUT_OF_SCOPE),
        "pizza2": record(log, "=pizza topping", "Not in my essay.", ReplyKind.OUT_OF_SCOPE),
        "cup": record(log, "Who wins the cup?", "Closest…", ReplyKind.NOT_DIRECT),
        "other": record(log, "Hi", "Hello!", ReplyKind.GREETING, tenant="guild-b"),
    }
    assert log.flag(made["answer"], "discord:u-1", "sounds off")
    assert log.vote(made["answer"], "discord:u-2", -1)
    assert log.vote(made["cup"], "discord:u-2", 1)
    log.ban("discord", "guild-a", "u-troll", "tester", "spam")
    log.close()
    return made


def run(*args: str) -> tuple[int, str]:
    """Exit code and output; a refused command (which `personabot` prints as one line and
    exit status 2) gives code 2 and the error's message."""
    result = runner.invoke(app, ["logs", "--as", "cli-mod", *args], env={"COLUMNS": "160"})
    if isinstance(result.exception, PersonabotError):
        return 2, str(result.exception)
    return result.exit_code, result.stdout


def ok_json(*args: str) -> Any:
    code, out = run(*args)
    assert code == 0, out
    return json.loads(out)


def test_flags_lists_claims_and_filters_by_status(ids: dict[str, str]) -> None:
    opened = ok_json("flags", "--json")
    assert [(f["exchange_id"], f["status"], f["assignee"]) for f in opened] == [
        (ids["answer"], "open", None)
    ]
    assert ok_json("flags", "--assignee", "nobody", "--json") == []
    assert len(ok_json("flags", "--assignee", "", "--json")) == 1
    code, out = run("flags")
    assert code == 0 and "sounds off" in out and ids["answer"][:12] in out
    assert ok_json("flags", "--status", "resolved", "--json") == []
    code, out = run("flags", "--limit", "0")
    assert code == 2 and "--limit must be between 1 and 10000" in out


def test_bans_lists_every_ban(ids: dict[str, str]) -> None:
    assert [(b["tenant"], b["user_id"], b["reason"]) for b in ok_json("bans", "--json")] == [
        ("guild-a", "u-troll", "spam")
    ]
    code, out = run("bans")
    assert code == 0 and "u-troll" in out


def test_redact_needs_a_reason_and_confirmation(ids: dict[str, str]) -> None:
    code, out = run("redact", ids["pizza1"], "--reason", "personal data")
    assert code == 2 and "add --yes" in out
    code, out = run("redact", ids["pizza1"], "--reason", " ", "--yes")
    assert code == 2 and "--reason" in out
    assert ok_json("redact", ids["pizza1"][:8], "--reason", "personal data", "--yes", "--json") == {
        "redacted": ids["pizza1"]
    }
    shown = ok_json("show", ids["pizza1"], "--json")
    assert shown["input_text"] == "[redacted]" and shown["redacted_by"] == "cli-mod"
    code, out = run("redact", "nosuchid", "--reason", "x", "--yes")
    assert code == 2 and "No exchange" in out


def test_votes_per_exchange_and_listed(ids: dict[str, str]) -> None:
    assert ok_json("votes", ids["answer"], "--json") == {"id": ids["answer"], "up": 0, "down": 1}
    down = ok_json("votes", "--json")
    assert [item["id"] for item in down["items"]] == [ids["answer"]]
    up = ok_json("votes", "--up", "--json")
    assert [item["id"] for item in up["items"]] == [ids["cup"]]
    code, out = run("votes", "--limit", "0")
    assert code == 2 and "--limit" in out


def test_ungrounded_means_what_the_dashboard_means(ids: dict[str, str]) -> None:
    # Refusals are never grounded, yet they are not what "ungrounded" asks for.
    found = ok_json("list", "--ungrounded", "--json")
    assert found["total"] == 0
    both = ok_json("list", "--ungrounded", "--refused", "--json")
    assert {item["id"] for item in both["items"]} == {ids["pizza1"], ids["pizza2"], ids["other"]}


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    rows = np.array([[float("pizza" in t), float("pizza" not in t)] for t in texts], np.float32)
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


def test_unanswered_groups_by_meaning_in_every_format(
    ids: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logs_cli, "LazyEncoder", lambda: fake_embed)
    groups = ok_json("unanswered", "--format", "json")
    assert [(g["count"], sorted(q["text"] for q in g["questions"])) for g in groups] == [
        (2, ["=pizza topping", "Best pizza?"]),
        (1, ["Who wins the cup?"]),
    ]
    assert groups[1]["kinds"] == {"not_direct": 1}
    code, out = run("unanswered", "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["question"] for r in rows if r["group"] == "1"} == {"'=pizza topping", "Best pizza?"}
    code, out = run("unanswered")
    assert code == 0 and "3 unanswered question(s) in 2 group(s)" in out
    assert ok_json("--scope", "guild-b", "unanswered", "--format", "json") == []
    code, out = run("unanswered", "--threshold", "1.5")
    assert code == 2 and "--threshold" in out


def test_list_sorts_by_score_like_the_dashboard(ids: dict[str, str]) -> None:
    log = open_log(load_settings())
    try:
        for question, best in (("strong", 0.9), ("weak", 0.1)):
            sent = exchange(question, tenant="guild-a")
            sent.trace.retrieved = [RetrievedPassage(passage_id="p-1", score=best)]
            log.record(sent)
    finally:
        log.close()
    listed = ok_json("list", "--sort", "score", "--json")["items"]
    assert [(x["input_text"], x["top_score"]) for x in listed[:3]] == [
        ("weak", 0.1), ("strong", 0.9), ("Hi", None),
    ]  # fmt: skip
    assert run("list", "--sort", "best")[0] == 2  # typer's usage error


def test_assign_and_review_from_a_script(ids: dict[str, str]) -> None:
    log = open_log(load_settings())
    try:
        ModeratorAccounts(log.engine, FAST_HASHER, log.sealer).add(
            "bea", PASSWORDS["alice"], ["guild-a"], admin=False, actor="test"
        )
    finally:
        log.close()
    flag_id = str(ok_json("flags", "--json")[0]["id"])
    code, out = run("assign", flag_id, "--to", "zed", "--reason", "expert")
    assert code == 2 and "'zed' does not moderate tenant 'guild-a'" in out
    assigned = ok_json("assign", flag_id, "--to", "bea", "--reason", "expert", "--json")
    assert (assigned["assignee"], assigned["assigned_by"]) == ("bea", "cli-mod")
    code, out = run("flags")
    assert code == 0 and "bea (by cli-mod)" in out

    assert [x["id"] for x in ok_json("votes", "--unreviewed", "--json")["items"]] == [ids["answer"]]
    code, out = run("review", ids["answer"], "--reason", "")
    assert code == 2 and "Say why the reply is fine" in out
    done = ok_json("review", ids["answer"][:8], "--reason", "accurate", "--json")
    assert done == {"reviewed": ids["answer"], "by": "cli-mod", "down": 1}
    assert ok_json("votes", "--unreviewed", "--json")["total"] == 0
    assert ok_json("votes", "--json")["total"] == 1  # still voted down, just reviewed
    code, out = run("show", ids["answer"])
    assert "down votes reviewed by cli-mod: accurate" in out
    code, out = run("votes", "--up", "--unreviewed")
    assert code == 2 and "drop --up" in out
