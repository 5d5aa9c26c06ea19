"""What a newcomer meets in the first ten minutes: set-up output, where data goes, the first
moderator account, the log listing at 80 columns, and the quick start run from another folder."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from adapters import cli, logs_cli
from bot.core import DialogueCore
from bot.settings import PROJECT_ROOT, first_use_notice, load_settings
from bot.storage import open_log
from tests.fakes import MemoryLog
from tests.storage.conftest import exchange

PERSONABOT = str(Path(sys.executable).with_name("personabot"))
runner = CliRunner()


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PERSONABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path / "data"


def fake_venv(root: Path, status: int) -> Path:
    """A venv whose python (and personabot) print pip-like noise and exit with `status`."""
    bin_dir = root / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    for name in ("python", "personabot"):
        program = bin_dir / name
        program.write_text(
            "#!/bin/sh\n"
            'for i in 1 2 3 4 5 6 7 8 9 10; do echo "Collecting noise-$i $*"; done\n'
            'echo "SetuptoolsDeprecationWarning: banner" >&2\n'
            f"exit {status}\n"
        )
        program.chmod(0o755)
    return root / "venv"


def make_setup(venv: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "-s", "-C", str(PROJECT_ROOT), f"VENV={venv}", "setup"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_set_up_prints_one_line_a_step_and_keeps_pips_log(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, 0)
    result = make_setup(venv)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("set-up 1/4") and lines[-1] == "set-up done"
    assert len(lines) == 5 and result.stderr == ""
    assert "Collecting noise" not in result.stdout
    # The last step builds the essay's index, so the first start reads it instead.
    assert lines[-2].startswith("set-up 4/4: the essay's index")
    assert "Collecting noise-1 index" in (venv / "setup.log").read_text()
    assert "SetuptoolsDeprecationWarning" in (venv / "setup.log").read_text()
    assert (venv / ".installed-stamp").exists()


def test_a_failed_set_up_shows_pips_log_in_full(tmp_path: Path) -> None:
    venv = fake_venv(tmp_path, 1)
    result = make_setup(venv)
    assert result.returncode != 0
    assert result.stdout.count("Collecting noise-") == 10
    assert "SetuptoolsDeprecationWarning" in result.stdout
    assert "set-up failed" in result.stderr and str(venv / "setup.log") in result.stderr
    assert not (venv / ".installed-stamp").exists()


def test_the_default_data_dir_is_per_user_and_announced_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSONABOT_DATA_DIR", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.data_dir == tmp_path / "xdg" / "personabot"
    notice = first_use_notice(settings)
    assert notice is not None and str(settings.data_dir) in notice
    assert "PERSONABOT_DATA_DIR" in notice
    settings.data_dir.mkdir(parents=True)
    assert first_use_notice(settings) is None
    monkeypatch.setenv("PERSONABOT_DATA_DIR", str(tmp_path / "mine"))
    chosen = load_settings()
    assert chosen.data_dir == tmp_path / "mine" and first_use_notice(chosen) is None


def test_batch_questions_are_logged_at_their_own_times(
    core: DialogueCore, log: MemoryLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "open_core", lambda *_: core)
    batch = tmp_path / "batch.txt"
    batch.write_text("What was Clinton's election motto?\nWhy did Yeltsin feel betrayed?\nhi\n")
    result = runner.invoke(cli.app, ["ask", "--batch", str(batch)])
    assert result.exit_code == 0, result.output
    times = [e.message.received_at for e in log.exchanges]
    assert len(times) == 3 and times[0] < times[1] < times[2]


def test_logs_list_fits_80_columns(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = open_log(load_settings())
    long_question = "Why did Yeltsin feel betrayed when NATO began to enlarge eastwards? " * 3
    ids = []
    for number in range(20):
        item = exchange(long_question if number % 2 else "hi", platform="local", tenant="local")
        log.record(item)
        ids.append(item.id)
    log.close()
    shown = Console(file=io.StringIO(), width=80, color_system=None)
    monkeypatch.setattr(logs_cli, "console", shown)
    result = runner.invoke(cli.app, ["logs", "list", "--limit", "20"])
    assert result.exit_code == 0, result.output
    file = shown.file
    assert isinstance(file, io.StringIO)
    lines = file.getvalue().splitlines()
    assert all(len(line) <= 80 for line in lines)
    rows = [line for line in lines if line[:12] in {i[:12] for i in ids}]
    assert len(rows) == 20 and len(lines) <= 24  # one line a row
    assert sum("Why did Yeltsin feel" in row and "…" in row for row in rows) == 10


def test_a_new_account_is_told_which_tenants_the_log_holds(env: Path) -> None:
    log = open_log(load_settings())
    log.record(exchange(platform="local", tenant="local"))
    log.record(exchange(platform="discord", tenant="guild-1"))
    log.close()
    added = runner.invoke(
        cli.app,
        ["moderators", "add", "alice", "--tenant", "local", "--tenant", "guild-x",
         "--password-stdin"],
        input="a-long-password\n",
    )  # fmt: skip
    assert added.exit_code == 0, added.output
    assert "tenants in the log: guild-1 (discord, 1 exchange), local (terminal, 1 exchange)" in (
        added.stdout
    )
    assert "no exchanges yet under: guild-x" in added.stdout


def test_an_empty_log_says_what_the_tenants_will_be(env: Path) -> None:
    added = runner.invoke(
        cli.app, ["moderators", "add", "root", "--admin", "--password-stdin"], input="pw-12345678\n"
    )
    assert added.exit_code == 0, added.output
    assert "the terminal logs under tenant 'local'" in added.stdout


def test_the_first_account_in_the_default_folder_says_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PERSONABOT_DATA_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    args = ["moderators", "add", "root", "--admin", "--password-stdin"]
    first = runner.invoke(cli.app, args, input="pw-12345678\n")
    assert first.exit_code == 0, first.output
    assert f"First run: keeping the conversation log and model files in {tmp_path}" in (
        first.stderr
    )
    assert (tmp_path / "xdg" / "personabot" / "personabot.db").exists()
    listed = runner.invoke(cli.app, ["moderators", "list", "--json"])
    assert listed.exit_code == 0 and listed.stderr == ""


def test_no_terminal_for_the_password_is_one_line_naming_the_option(env: Path) -> None:
    result = subprocess.run(
        [PERSONABOT, "moderators", "add", "bob", "--tenant", "local"],
        check=False,
        capture_output=True,
        text=True,
        input="typed-without-a-terminal\n",
        timeout=120,
        start_new_session=True,  # no controlling terminal, as under cron or CI
    )
    assert result.returncode == 2, result.stderr
    assert "GetPassWarning" not in result.stderr and "Traceback" not in result.stderr
    assert "--password-stdin" in result.stderr and len(result.stderr.splitlines()) == 1


@pytest.mark.slow
def test_quick_start_from_another_folder_logs_to_the_default_log(tmp_path: Path) -> None:
    """The README's `personabot ask`, run from an unrelated folder by a user with a fresh home:
    nothing lands in that folder, the first run says where data goes, and the exchange is in
    the default log that `personabot logs` (and the dashboard) read."""
    home, elsewhere = tmp_path / "home", tmp_path / "elsewhere"
    elsewhere.mkdir()
    environment = {k: v for k, v in os.environ.items() if k != "PERSONABOT_DATA_DIR"}
    environment |= {"HOME": str(home), "XDG_DATA_HOME": str(home / ".local" / "share")}

    def personabot(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PERSONABOT, *args],
            check=False,
            capture_output=True,
            text=True,
            env=environment,
            cwd=elsewhere,
            timeout=600,
        )

    first = personabot("ask", "What was Clinton's election motto?")
    assert first.returncode == 0, first.stderr
    assert "economy" in first.stdout
    data = home / ".local" / "share" / "personabot"
    assert f"First run: keeping the conversation log and model files in {data}" in first.stderr
    assert list(elsewhere.iterdir()) == []
    again = personabot("ask", "Who are you?")
    assert again.returncode == 0 and "First run" not in again.stderr
    listed = personabot("logs", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)["items"]
    assert [row["input_text"] for row in rows] == [
        "Who are you?",
        "What was Clinton's election motto?",
    ]
    assert rows[0]["kind"] == "identity" and rows[0]["tenant"] == "local"
