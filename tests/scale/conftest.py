from __future__ import annotations

import pytest

from bot.settings import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """At scale the model (in process or behind a server) adds to answers, so that these tests
    exercise the generator path: queueing, deadlines, metrics and prompts."""
    return settings.model_copy(update={"model_adds": True})
