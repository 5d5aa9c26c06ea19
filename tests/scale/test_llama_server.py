"""The remote generator against llama-cpp-python's real OpenAI-compatible server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.answering.generation import Generation, GenerationRequest, TokenSink, bundled_model_path
from bot.answering.openai_generator import BreakerState, CircuitBreaker, OpenAIGenerator
from bot.errors import GeneratorUnavailableError
from bot.factory import build_core
from bot.messages import IncomingMessage
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


class KillOnFirstToken:
    """Passes generation through, killing the server as soon as its first token arrives."""

    def __init__(self, inner: OpenAIGenerator, server: LlamaServer) -> None:
        self.inner = inner
        self.server = server
        self.model_id = inner.model_id
        self.armed = True
        self.tokens = 0

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        def forward(piece: str) -> None:
            if self.armed:
                self.armed = False
                self.server.kill()
            self.tokens += 1
            if on_token:
                on_token(piece)

        return self.inner.generate(request, forward)


def test_server_killed_mid_stream_then_restarted(server: LlamaServer, settings: Settings) -> None:
    breaker = CircuitBreaker(failures=1, reset_s=1.0)
    remote = OpenAIGenerator(
        server.url, "smollm2", retries=1, backoff_s=0.05, connect_timeout_s=1.0, breaker=breaker
    )
    killer = KillOnFirstToken(remote, server)
    log = MemoryLog()
    core = build_core(settings, generator=killer, log=log)
    shown: list[str] = []
    cut = core.respond(IncomingMessage(text=QUESTION), shown.append)
    assert 0 < killer.tokens < settings.max_tokens  # it died mid-answer
    # The direct answer was on screen before the model ran; the dead server costs only its
    # sentence, and the failure is on record.
    assert not cut.reply.refused and cut.reply.citations and cut.reply.model_sentences == 0
    assert "".join(shown) == cut.reply.text and log.exchanges[-1] is cut
    assert any(v.check == "generation" and not v.passed for v in cut.reply.moderation)
    assert breaker.state is BreakerState.OPEN

    started = time.perf_counter()
    fast = core.respond(IncomingMessage(text=QUESTION, channel="elsewhere"))
    assert fast.reply.text == cut.reply.text
    assert time.perf_counter() - started < 0.5  # the open circuit fails fast, no time-out
    with pytest.raises(GeneratorUnavailableError, match="circuit open"):
        remote.generate(LONG)

    server.start()
    time.sleep(1.0)  # the breaker's reset time: the next call is the half-open trial
    healed = core.respond(IncomingMessage(text=QUESTION, channel="third"))
    assert not healed.reply.refused and healed.reply.citations
    assert healed.reply.tokens.completion > 0 and breaker.state.value == "closed"
    assert len(log.exchanges) == 3
