"""`personabot moderators ...` and `personabot dashboard` through typer's CliRunner on the real app."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlmodel import Session, select
from typer.testing import CliRunner

from adapters.cli import app
from bot.settings import load_settings
from bot.storage import open_log
from bot.storage.accounts import ModeratorAccounts
from bot.storage.models import Moderator

runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


def test_add_list_passwd_remove(env: Path) -> None:
    added = runner.invoke(
        app,
        ["moderators", "add", "alice", "--tenant", "guild-a", "--tenant", "guild-c",
         "--password-stdin"],
        input="a-long-password\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "moderator alice added (guild-a, guild-c)" in added.stdout
    prompted = runner.invoke(
        app, ["moderators", "add", "root", "--admin"], input="root-password-1\nroot-password-1\n"
    )
    assert prompted.exit_code == 0, prompted.output
    assert "root-password-1" not in prompted.stdout  # the prompt hides what is typed

    listed = runner.invoke(app, ["moderators", "list", "--json"])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["admin"], r["tenants"]) for r in rows] == [
        ("alice", False, ["guild-a", "guild-c"]),
        ("root", True, []),
    ]
    log = open_log(load_settings())
    try:
        accounts = ModeratorAccounts(log.engine)
        assert accounts.authenticate("alice", "a-long-password") is not None
        with Session(log.engine) as db:
            hashes = [m.password_hash for m in db.exec(select(Moderator)).all()]
        assert all(h.startswith("$argon2id$") for h in hashes)

        changed = runner.invoke(
            app, ["moderators", "passwd", "alice", "--password-stdin"], input="another-password\n"
        )
        assert changed.exit_code == 0, changed.output
        assert accounts.authenticate("alice", "a-long-password") is None
        assert accounts.authenticate("alice", "another-password") is not None

        removed = runner.invoke(app, ["moderators", "remove", "alice"])
        assert removed.exit_code == 0
        assert [m.name for m in accounts.list()] == ["root"]
        assert [e.action for e in log.audit(limit=4)] == [
            "moderator-remove", "moderator-passwd", "moderator-add", "moderator-add",
        ]  # fmt: skip
    finally:
        log.close()


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["add", "bob", "--password-stdin"], "a-long-password\n", "at least one --tenant"),
        (["add", "bob", "--tenant", "g", "--password-stdin"], "short\n", "at least 10"),
        (
            ["add", "b o b", "--tenant", "g", "--password-stdin"],
            "a-long-password\n",
            "Bad moderator",
        ),
        (["add", "bob", "--tenant", "g", "--password-stdin"], "\n", "No password on stdin"),
        (["remove", "nobody"], "", "No moderator named 'nobody'"),
        (["passwd", "nobody", "--password-stdin"], "a-long-password\n", "No moderator"),
    ],
)
def test_bad_input_is_one_clear_line(env: Path, args: list[str], stdin: str, message: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", "from adapters.cli import main; main()", "moderators", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("personabot:")]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr


def test_dashboard_on_a_busy_port_is_one_clear_line(env: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-c", "from adapters.cli import main; main()", "dashboard",
             "--port", str(port)],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert result.returncode == 2
    assert f"Cannot serve on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_dashboard_command_serves_the_sign_in_page(env: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-c", "from adapters.cli import main; main()", "dashboard",
         "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/signin", timeout=2)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "dashboard did not start"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "Sign in" in response.text
        assert httpx.get(f"http://127.0.0.1:{port}/exchanges").status_code == 303
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=20)
    assert "no moderator accounts yet" in output
