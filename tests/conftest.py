from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import DialogueCore
from bot.factory import build_core
from bot.knowledge import Knowledge, load_knowledge
from bot.settings import PROJECT_ROOT, Settings, load_settings
from bot.understanding.encoder import load_encoder
from bot.understanding.retrieval import HybridRetriever
from tests.fakes import MemoryLog, ScriptedGenerator

DEV_EVAL = PROJECT_ROOT / "benchmarks" / "eval" / "dev.jsonl"


@pytest.fixture(scope="session", autouse=True)
def _no_data_in_the_real_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The default data folder is per-user (platformdirs follows XDG_DATA_HOME): a test, or a
    process it starts, that does not choose a data dir writes here instead of the user's home."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("xdg-data")))
        # The essay's vectors are computed once per test session and shared by its processes:
        # built here, as set-up builds them, so a process a test starts never has to say it is
        # building them, whichever test runs first.
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        passages = load_knowledge(PROJECT_ROOT / "knowledge").passages
        HybridRetriever(passages, load_encoder(), load_settings().cache_dir / "vectors")
        yield


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
