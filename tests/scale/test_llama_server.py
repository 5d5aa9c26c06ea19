"""The remote generator against llama-cpp-python's real OpenAI-compatible server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.errors import GeneratorUnavailableError
from bot.factory import build_core
from bot.generation import GenerationRequest, bundled_model_path
from bot.messages import IncomingMessage
from bot.openai_generator import BreakerState, CircuitBreaker, OpenAIGenerator
from bot.settings import Settings
from tests.fakes import MemoryLog
from tests.scale.servers import LlamaServer, llama_server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
QUESTION = "Why did Russia object to NATO enlargement?"
LONG = GenerationRequest(
    system="You are a helpful historian.",
    user="Write a long, detailed history of NATO enlargement in Europe since 1990.",
    max_tokens=400,
)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LlamaServer]:
    with llama_server(bundled_model_path(), tmp_path) as running:
        yield running


def test_a_real_answer_streams_through_the_core(server: LlamaServer, settings: Settings) -> None:
    log = MemoryLog()
    remote = OpenAIGenerator(server.url, "smollm2", read_timeout_s=120)
    assert remote.ping()
    pieces: list[str] = []
    tokens: list[str] = []
    core = build_core(settings, generator=remote, log=log)
    exchange = core.respond(IncomingMessage(text=QUESTION), pieces.append)
    assert not exchange.reply.refused and exchange.reply.citations
    assert "".join(pieces).strip() == exchange.reply.text.strip()
    assert exchange.reply.tokens.completion > 1 and exchange.reply.timings.ttft_ms > 0
    assert log.exchanges == [exchange] and exchange.trace.model_id == "openai:smollm2"
    result = remote.generate(LONG, tokens.append)
    assert len(tokens) > 10 and "".join(tokens) == result.text


def test_server_killed_mid_stream_then_restarted(server: LlamaServer, settings: Settings) -> None:
    breaker = CircuitBreaker(failures=1, reset_s=1.0)
    remote = OpenAIGenerator(
        server.url, "smollm2", retries=1, backoff_s=0.05, connect_timeout_s=1.0, breaker=breaker
    )
    received: list[str] = []

    def kill_on_first_token(piece: str) -> None:
        if not received:
            server.kill()
        received.append(piece)

    with pytest.raises(GeneratorUnavailableError, match="failed"):
        remote.generate(LONG, kill_on_first_token)
    assert 0 < len(received) < LONG.max_tokens  # it died mid-answer
    assert breaker.state is BreakerState.OPEN
    started = time.perf_counter()
    with pytest.raises(GeneratorUnavailableError, match="circuit open"):
        remote.generate(LONG)
    assert time.perf_counter() - started < 0.1  # failing fast, no time-out waited
    core = build_core(settings, generator=remote)
    assert core.canned("unavailable") == "I cannot think right now, please try again shortly."

    server.start()
    time.sleep(1.0)  # the breaker's reset time: the next call is the half-open trial
    result = remote.generate(LONG)
    assert result.text and breaker.state.value == "closed"
