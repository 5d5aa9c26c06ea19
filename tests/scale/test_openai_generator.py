"""The OpenAI-compatible generator against a scripted server on loopback: streaming, retries, breaker."""

from __future__ import annotations

import pytest

from bot.answering.generation import GenerationRequest
from bot.answering.openai_generator import (
    BreakerState,
    CircuitBreaker,
    OpenAIGenerator,
    _retry_after,
)
from bot.core import DialogueCore
from bot.errors import GenerationError, GeneratorUnavailableError
from bot.factory import build_core, build_generator
from bot.messages import IncomingMessage
from bot.settings import Settings, load_settings
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.scale.servers import MockOpenAIServer, Scripted

REQUEST = GenerationRequest(system="You are the author.", user="Why enlarge NATO?", max_tokens=32)
QUESTION = "Why did Russia object to NATO enlargement?"


class Waits(list[float]):
    """Records back-off waits instead of sleeping, so the tests are fast and exact."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def generator(server: MockOpenAIServer, waits: Waits, **kwargs: object) -> OpenAIGenerator:
    return OpenAIGenerator(server.url, "mock-model", "sk-test", sleep=waits, **kwargs)  # type: ignore[arg-type]


def test_streams_pieces_and_sends_the_core_texts() -> None:
    tokens: list[str] = []
    with MockOpenAIServer(default=Scripted(pieces=["The ", "answer", "."])) as server:
        result = generator(server, Waits()).generate(REQUEST, tokens.append)
    assert tokens == ["The ", "answer", "."]
    assert result.text == "The answer."
    assert result.completion_tokens == 3
    assert result.ttft_ms > 0 and result.total_ms >= result.ttft_ms
    sent = server.requests[0]
    assert sent["stream"] is True and sent["model"] == "mock-model"
    assert sent["messages"] == [
        {"role": "system", "content": REQUEST.system},
        {"role": "user", "content": REQUEST.user},
    ]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert result.options["max_tokens"] == 32 and "messages" not in result.options


def test_honours_retry_after_on_429() -> None:
    waits = Waits()
    script = [Scripted(status=429, headers={"Retry-After": "2"})]
    with MockOpenAIServer(script) as server:
        result = generator(server, waits).generate(REQUEST)
    assert waits == [2.0]
    assert len(server.requests) == 2
    assert result.text == "Hello there."


def test_retries_5xx_with_growing_back_off() -> None:
    waits = Waits()
    script = [Scripted(status=503), Scripted(status=502)]
    with MockOpenAIServer(script) as server:
        result = generator(server, waits, retries=2, backoff_s=0.1).generate(REQUEST)
    assert len(server.requests) == 3 and result.text == "Hello there."
    assert 0.1 <= waits[0] <= 0.15 and 0.2 <= waits[1] <= 0.3


def test_gives_up_after_retries_and_the_breaker_then_fails_fast() -> None:
    waits = Waits()
    breaker = CircuitBreaker(failures=2, reset_s=60)
    with MockOpenAIServer(default=Scripted(status=500)) as server:
        gen = generator(server, waits, retries=1, breaker=breaker)
        for _ in range(2):
            with pytest.raises(GeneratorUnavailableError, match="HTTP 500"):
                gen.generate(REQUEST)
        assert breaker.state is BreakerState.OPEN
        with pytest.raises(GeneratorUnavailableError, match="circuit open"):
            gen.generate(REQUEST)
    assert len(server.requests) == 4  # two calls of two attempts each; the third never left


def test_client_errors_are_not_retried_and_do_not_open_the_breaker() -> None:
    waits = Waits()
    breaker = CircuitBreaker(failures=1)
    with (
        MockOpenAIServer([Scripted(status=400)]) as server,
        pytest.raises(GenerationError, match="HTTP 400 scripted 400") as raised,
    ):
        generator(server, waits, breaker=breaker).generate(REQUEST)
    assert not isinstance(raised.value, GeneratorUnavailableError)
    assert len(server.requests) == 1 and waits == []
    assert breaker.state is BreakerState.CLOSED


def test_a_stream_cut_after_tokens_is_not_repeated() -> None:
    tokens: list[str] = []
    waits = Waits()
    with (
        MockOpenAIServer([Scripted(pieces=["Half", " a"], cut=True)]) as server,
        pytest.raises(GeneratorUnavailableError),
    ):
        generator(server, waits).generate(REQUEST, tokens.append)
    assert tokens == ["Half", " a"]
    assert len(server.requests) == 1 and waits == []


def test_connection_refused_is_unavailable() -> None:
    with MockOpenAIServer() as server:
        url = server.url
    gen = OpenAIGenerator(url, retries=1, sleep=Waits(), connect_timeout_s=0.5)
    with pytest.raises(GeneratorUnavailableError, match="ConnectError"):
        gen.generate(REQUEST)
    assert not gen.ping()


def test_breaker_half_opens_for_one_trial() -> None:
    now = [0.0]
    breaker = CircuitBreaker(failures=2, reset_s=10, clock=lambda: now[0])
    breaker.failed()
    assert breaker.allow()
    breaker.failed()
    assert breaker.state is BreakerState.OPEN and not breaker.allow()
    assert breaker.retry_in() == 10
    now[0] = 10.0
    assert breaker.state.value == "half_open"
    assert breaker.allow() and not breaker.allow()  # only one trial at a time
    breaker.failed()
    assert breaker.state.value == "open"
    now[0] = 20.0
    assert breaker.allow()
    breaker.succeeded()
    assert breaker.state.value == "closed" and breaker.allow()


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert _retry_after("3") == 3.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0
    assert _retry_after("soon") is None
    assert _retry_after(None) is None


def test_the_core_sends_the_same_prompt_as_in_process(settings: Settings) -> None:
    scripted = ScriptedGenerator(["NATO enlargement worried Moscow."])
    build_core(settings, generator=scripted).respond(IncomingMessage(text=QUESTION))
    log = MemoryLog()
    with MockOpenAIServer() as server:
        remote = generator(server, Waits())
        core: DialogueCore = build_core(settings, generator=remote, log=log)
        exchange = core.respond(IncomingMessage(text=QUESTION))
    messages = server.requests[0]["messages"]
    assert messages[0]["content"] == scripted.requests[0].system
    assert messages[1]["content"] == scripted.requests[0].user
    assert log.exchanges == [exchange]
    assert exchange.trace.model_id == "openai:mock-model"
    assert exchange.trace.prompt == f"{messages[0]['content']}\n\n{messages[1]['content']}"
    assert exchange.reply.citations


def test_settings_select_the_remote_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PERSONABOT_INFERENCE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("PERSONABOT_INFERENCE_MODEL", "smollm2")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    settings = load_settings()
    assert "sk-from-env" not in repr(settings)
    built = build_generator(settings)
    assert isinstance(built, OpenAIGenerator)
    assert built.model_id == "openai:smollm2"
    with pytest.raises(GenerationError, match="must start with http"):
        OpenAIGenerator("127.0.0.1:8080")
