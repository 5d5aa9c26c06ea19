"""The operations port over real HTTP on loopback, metrics fed by a real core, and JSON logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from prometheus_client import CONTENT_TYPE_LATEST

from bot.answering.generation import GenerationRequest
from bot.answering.openai_generator import OpenAIGenerator
from bot.errors import ConfigurationError, GeneratorUnavailableError
from bot.factory import build_core
from bot.messages import IncomingMessage
from bot.serving.logging_setup import configure_logging, request_context
from bot.serving.ops import (
    Check,
    CountingGenerator,
    CountingLog,
    Metrics,
    OpsServer,
    database_check,
    serve_in_thread,
)
from bot.settings import Settings, load_settings
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.scale.servers import MockOpenAIServer, Scripted, free_port

IN_SCOPE = "Why did Russia object to NATO enlargement?"
OUT_OF_SCOPE = "What is the best recipe for pancakes?"
POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


async def serve(metrics: Metrics, checks: dict[str, Check]) -> AsyncIterator[httpx.AsyncClient]:
    server = OpsServer(metrics, checks, check_timeout_s=0.5)
    port = await server.start()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
        yield client
    await server.stop()


@pytest.fixture
def metrics() -> Metrics:
    return Metrics()


async def test_liveness_and_readiness_report_each_check(metrics: Metrics) -> None:
    async def slow() -> bool:
        await asyncio.sleep(2)
        return True

    def broken() -> bool:
        raise ConnectionError("refused")

    async for client in serve(metrics, {"model": lambda: True, "db": broken, "redis": slow}):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"model": True, "db": False, "redis": False}
        scraped = (await client.get("/metrics")).text
    assert 'personabot_errors_total{kind="readiness_db"} 1.0' in scraped
    assert 'personabot_errors_total{kind="readiness_redis"} 1.0' in scraped


@pytest.mark.service
async def test_readiness_probes_a_real_inference_server_and_postgres(metrics: Metrics) -> None:
    with MockOpenAIServer() as inference:
        remote = OpenAIGenerator(inference.url)
        checks: dict[str, Check] = {"model": remote.ping, "database": database_check(POSTGRES)}
        async for client in serve(metrics, checks):
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {"status": "ready", "checks": {"model": True, "database": True}}
    dead_db = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    checks = {"model": remote.ping, "database": database_check(dead_db)}
    async for client in serve(metrics, checks):
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"model": False, "database": False}


async def test_metrics_count_exchanges_refusals_latency_queue_and_errors(
    metrics: Metrics, settings: Settings
) -> None:
    log = MemoryLog()
    core = build_core(
        settings,
        generator=CountingGenerator(ScriptedGenerator(), metrics),
        log=CountingLog(log, metrics),
    )
    core.respond(IncomingMessage(text=IN_SCOPE, platform="slack"))
    core.respond(IncomingMessage(text=OUT_OF_SCOPE, platform="slack"))
    metrics.track_queue(lambda: 3)
    with MockOpenAIServer(default=Scripted(status=503)) as inference:
        failing = CountingGenerator(OpenAIGenerator(inference.url, retries=0), metrics)
        with pytest.raises(GeneratorUnavailableError):
            failing.generate(GenerationRequest(system="s", user="u", max_tokens=8))
    async for client in serve(metrics, {}):
        response = await client.get("/metrics")
    assert response.headers["content-type"] == CONTENT_TYPE_LATEST
    text = response.text
    assert len(log.exchanges) == 2
    assert 'personabot_exchanges_total{platform="slack"} 2.0' in text
    assert 'personabot_refusals_total{platform="slack"} 1.0' in text
    assert 'personabot_reply_seconds_count{platform="slack"} 2.0' in text
    assert "personabot_generation_seconds_count 1.0" in text
    assert "personabot_queue_depth 3.0" in text
    assert 'personabot_errors_total{kind="GeneratorUnavailableError"} 1.0' in text


def test_a_failing_log_is_counted_and_the_reply_still_goes_out(
    metrics: Metrics, settings: Settings
) -> None:
    core = build_core(
        settings, generator=ScriptedGenerator(), log=CountingLog(MemoryLog(True), metrics)
    )
    assert core.respond(IncomingMessage(text=IN_SCOPE)).reply.citations
    errors = metrics.registry.get_sample_value("personabot_errors_total", {"kind": "log_write"})
    assert errors == 1.0


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.usefixtures("restore_logging")
@pytest.mark.parametrize("bodies", [False, True])
def test_json_logs_carry_request_ids_and_no_secrets_or_bodies(
    metrics: Metrics, bodies: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    monkeypatch.setenv("REDIS_URL", "redis://:hunter22@127.0.0.1:6379/0")
    settings = load_settings(log_message_bodies=bodies)
    out = io.StringIO()
    configure_logging(settings, stream=out)
    core = build_core(
        settings,
        generator=ScriptedGenerator(),
        log=CountingLog(None, metrics, include_bodies=settings.log_message_bodies),
    )
    with request_context("req-42"):
        exchange = core.respond(IncomingMessage(text=IN_SCOPE, user_id="U1"))
    logging.getLogger("personabot.test").warning(
        "connecting with %s to %s", "sk-very-secret", settings.redis_url
    )
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    record = next(line for line in lines if line["msg"] == "exchange")
    assert record["request_id"] == "req-42"
    assert record["exchange_id"] == exchange.id and record["user_id"] == "U1"
    assert record["level"] == "info" and record["logger"] == "bot.serving.ops"
    assert ("question" in record) is bodies and ("answer" in record) is bodies
    assert (IN_SCOPE in out.getvalue()) is bodies
    assert "sk-very-secret" not in out.getvalue() and "hunter22" not in out.getvalue()
    assert lines[-1]["msg"] == "connecting with [redacted] to redis://:[redacted]@127.0.0.1:6379/0"


def test_a_non_asyncio_runner_gets_the_port_in_a_thread(metrics: Metrics) -> None:
    server = OpsServer(metrics, {"model": lambda: True})
    serve_in_thread(server)
    assert httpx.get(f"http://127.0.0.1:{server.port}/readyz").json()["status"] == "ready"
    with pytest.raises(ConfigurationError, match="Cannot open the operations port"):
        serve_in_thread(OpsServer(metrics, port=server.port))
