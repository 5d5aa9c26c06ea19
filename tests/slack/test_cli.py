"""`personabot slack`: bad or missing credentials end in one clear line and exit 2, before the model loads."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn

from adapters import cli
from bot.core import DialogueCore
from bot.factory import build_core
from bot.serving.ops import Operations
from bot.settings import Settings
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.slack.conftest import SIGNING_SECRET
from tests.slack.mock_slack import BOT_TOKEN, MockSlack

pytestmark = pytest.mark.timeout(60)


class ModeratedLog(MemoryLog):
    """A log that is also a moderation store, as the SQL log is."""

    def flag(self, exchange_id: str, reporter: str, reason: str) -> bool:
        return False

    def is_banned(self, platform: str, tenant: str, user_id: str) -> bool:
        return False


@pytest.fixture(autouse=True)
def _root_logging() -> Iterator[None]:
    """`serve` installs its own log handler; put pytest's back afterwards."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET", "SLACK_APP_TOKEN"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"PERSONABOT_{name}", raising=False)
    monkeypatch.setattr(sys, "argv", ["personabot", "slack"])
    return monkeypatch


def _run(capsys: pytest.CaptureFixture[str]) -> str:
    """The one line the person reads; whatever was logged before it is JSON."""
    with pytest.raises(SystemExit) as exited:
        cli.main()
    assert exited.value.code == 2
    *logged, err = capsys.readouterr().err.strip().splitlines()
    assert all(isinstance(json.loads(line), dict) for line in logged)
    assert "Traceback" not in err
    return err


def _never_load(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: object) -> DialogueCore:
        raise AssertionError("the core must not load before the credentials are checked")

    monkeypatch.setattr(cli, "open_core", fail)


@pytest.mark.parametrize(
    ("variables", "expected"),
    [
        ({}, "SLACK_BOT_TOKEN is not set"),
        ({"SLACK_BOT_TOKEN": "xoxp-user-token"}, "must be a bot token starting with xoxb-"),
        ({"SLACK_BOT_TOKEN": BOT_TOKEN}, "SLACK_SIGNING_SECRET is not set"),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "hunter2"},
            "SLACK_SIGNING_SECRET looks wrong",
        ),
        (
            {"SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": "xoxb-not-an-app-token"},
            "SLACK_APP_TOKEN must be an app-level token",
        ),
        ({"PERSONABOT_SLACK_COMMAND": "ask"}, "Invalid Slack settings: command"),
    ],
)
def test_missing_or_malformed_credentials(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variables: dict[str, str],
    expected: str,
) -> None:
    _never_load(env)
    for name, value in variables.items():
        env.setenv(name, value)
    err = _run(capsys)
    assert err.startswith("personabot: ")
    assert expected in err
    for value in variables.values():
        assert value not in err or value in {BOT_TOKEN, "ask"}  # secrets are never echoed


def test_token_slack_rejects_is_reported_by_auth_test(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], mock_slack: MockSlack
) -> None:
    _never_load(env)
    env.setenv("SLACK_BOT_TOKEN", "xoxb-revoked")
    env.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    env.setenv("PERSONABOT_SLACK_API_BASE_URL", mock_slack.base_url)
    err = _run(capsys)
    assert "Slack rejected SLACK_BOT_TOKEN (invalid_auth)" in err
    assert [c.method for c in mock_slack.calls] == ["auth.test"]


def test_unreachable_slack_is_one_line(
    env: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _never_load(env)
    env.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    env.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    env.setenv("PERSONABOT_SLACK_API_BASE_URL", "http://127.0.0.1:9/api/")
    env.setenv("PERSONABOT_SLACK_API_RETRIES", "0")
    assert "Cannot reach Slack at http://127.0.0.1:9/api/" in _run(capsys)


def test_app_token_slack_rejects_ends_socket_mode(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mock_slack: MockSlack,
    settings: Settings,
) -> None:
    env.setattr(
        cli,
        "open_core",
        lambda: build_core(settings, generator=ScriptedGenerator(), log=ModeratedLog()),
    )
    env.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    env.setenv("SLACK_APP_TOKEN", "xapp-revoked")
    env.setenv("PERSONABOT_SLACK_API_BASE_URL", mock_slack.base_url)
    err = _run(capsys)
    assert "Slack rejected SLACK_APP_TOKEN (invalid_auth)" in err
    assert "apps.connections.open" in [c.method for c in mock_slack.calls]


def test_without_a_moderation_log_it_says_so(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mock_slack: MockSlack,
    core: DialogueCore,
) -> None:
    env.setattr(cli, "open_core", lambda: core)  # a MemoryLog: no flags, no bans
    env.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    env.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    env.setenv("PERSONABOT_SLACK_API_BASE_URL", mock_slack.base_url)
    assert "needs the moderation log" in _run(capsys)


def test_a_start_logs_only_json_and_the_workspace_after_logging_is_set_up(
    env: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    mock_slack: MockSlack,
    settings: Settings,
) -> None:
    env.setattr(
        cli,
        "open_core",
        lambda: build_core(settings, generator=ScriptedGenerator(), log=ModeratedLog()),
    )
    served: list[object] = []
    env.setattr(uvicorn, "run", lambda app, **_: served.append(app))
    env.setattr(Operations, "start_in_thread", lambda self: None)
    env.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)  # Bolt reads it too, and warns that it is unused
    env.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    env.setenv("PERSONABOT_SLACK_API_BASE_URL", mock_slack.base_url)
    env.setenv("PERSONABOT_LOG_FORMAT", "json")

    with pytest.raises(SystemExit) as exited:
        cli.main()

    assert exited.value.code == 0
    assert served
    lines = capsys.readouterr().err.strip().splitlines()
    records = [json.loads(line) for line in lines]  # every line, from the first, is JSON
    assert any(r["msg"].startswith("Slack workspace Test Team (T0TEAM) as") for r in records)
    assert BOT_TOKEN not in "\n".join(lines)
