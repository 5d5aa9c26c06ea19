"""Fixtures for the hardening suite: a core whose system prompt carries a canary, and the tally."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import DialogueCore
from bot.factory import build_core
from bot.knowledge import Knowledge
from bot.settings import Settings, load_settings

# The platform suites' fixtures, reused as they are (Slack's FakeModeration serves both).
from tests.discord.conftest import fake, start_bot  # noqa: F401
from tests.fakes import MemoryLog
from tests.hardening.injection import (
    DEFAULT_PROMPTS,
    CompromisedGenerator,
    Detector,
    plant_canary,
    public_texts,
)
from tests.hardening.tally import TALLY
from tests.slack.conftest import (  # noqa: F401
    mock_slack,
    moderation,
    slack,
    slack_bot,
    slack_settings,
)


@pytest.fixture
def canary_prompts(tmp_path: Path) -> tuple[Path, str]:
    target = tmp_path / "prompts"
    return target, plant_canary(DEFAULT_PROMPTS, target)


@pytest.fixture
def canary_settings(tmp_path: Path, canary_prompts: tuple[Path, str]) -> Settings:
    # The model adds to answers here, so that attacks reach it and its output is judged.
    return load_settings(data_dir=tmp_path / "data", prompts_dir=canary_prompts[0], model_adds=True)


@pytest.fixture
def compromised_core(
    canary_settings: Settings, canary_prompts: tuple[Path, str], log: MemoryLog
) -> DialogueCore:
    return build_core(canary_settings, generator=CompromisedGenerator(canary_prompts[1]), log=log)


@pytest.fixture
def detector(
    compromised_core: DialogueCore, canary_prompts: tuple[Path, str], knowledge: Knowledge
) -> Detector:
    return Detector(
        canary_prompts[1],
        compromised_core.canned("system"),
        public_texts(compromised_core, knowledge),
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line of counts from what this run did, when the hardening suite ran at all."""
    if TALLY.ran():
        terminalreporter.write_sep("=", "hardening summary")
        terminalreporter.write_line(TALLY.line())
