from __future__ import annotations

from pathlib import Path

import pytest

from bot.core import DialogueCore
from bot.factory import build_core
from bot.knowledge import Knowledge, load_knowledge
from bot.settings import PROJECT_ROOT, Settings, load_settings
from tests.fakes import MemoryLog, ScriptedGenerator

SHARED_EVAL = PROJECT_ROOT.parent / "shared" / "eval" / "dev.jsonl"
DEV_EVAL = PROJECT_ROOT / "tests" / "data" / "dev.jsonl"


@pytest.fixture(scope="session")
def knowledge() -> Knowledge:
    return load_knowledge(PROJECT_ROOT / "knowledge")


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(data_dir=tmp_path / "data")


@pytest.fixture
def generator() -> ScriptedGenerator:
    return ScriptedGenerator()


@pytest.fixture
def log() -> MemoryLog:
    return MemoryLog()


@pytest.fixture
def core(settings: Settings, generator: ScriptedGenerator, log: MemoryLog) -> DialogueCore:
    return build_core(settings, generator=generator, log=log)
