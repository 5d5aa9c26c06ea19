"""Operations port for each bot process: liveness, readiness and Prometheus metrics.

The core is not edited to be measured: `CountingLog` wraps the conversation log (every exchange
passes through it) and `CountingGenerator` wraps the generator (to count its failures by kind).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from bot.answering.generation import Generation, GenerationRequest, Generator, TokenSink
from bot.conversation_log import ConversationLog
from bot.core import DialogueCore
from bot.errors import ConfigurationError
from bot.messages import Exchange
from bot.serving.logging_setup import exchange_fields
from bot.settings import Settings

logger = logging.getLogger(__name__)
Check = Callable[[], bool] | Callable[[], Awaitable[bool]]
_SECONDS = (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64)


class Metrics:
    """The process's metrics in their own registry, so tests and several apps never collide."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.exchanges = Counter(
            "personabot_exchanges", "Exchanges answered", ["platform"], registry=r
        )
        self.refusals = Counter(
            "personabot_refusals", "Exchanges answered with a refusal", ["platform"], registry=r
        )
        self.reply_seconds = Histogram(
            "personabot_reply_seconds", "Message in to reply out", ["platform"],
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.first_token_seconds = Histogram(
            "personabot_first_token_seconds", "Model time to first token",
            buckets=_SECONDS, registry=r,
        )  # fmt: skip
        self.generation_seconds = Histogram(
            "personabot_generation_seconds", "Model generation time", buckets=_SECONDS, registry=r
        )
        self.queue_depth = Gauge(
            "personabot_queue_depth", "Turns waiting for or in inference", registry=r
        )
        self.errors = Counter("personabot_errors", "Errors by kind", ["kind"], registry=r)

    def observe(self, exchange: Exchange) -> None:
        platform = exchange.message.platform
        reply = exchange.reply
        self.exchanges.labels(platform).inc()
        if reply.refused:
            self.refusals.labels(platform).inc()
        self.reply_seconds.labels(platform).observe(reply.timings.total_ms / 1000)
        if reply.timings.generation_ms:
            self.first_token_seconds.observe(reply.timings.ttft_ms / 1000)
            self.generation_seconds.observe(reply.timings.generation_ms / 1000)

    def track_queue(self, depth: Callable[[], int]) -> None:
        """Reads the depth at scrape time, e.g. `metrics.track_queue(lambda: queue.depth)`."""
        self.queue_depth.set_function(lambda: float(depth()))

    def error(self, kind: str) -> None:
        self.errors.labels(kind).inc()


class CountingLog:
    """A ConversationLog that counts and logs each exchange, then forwards it to the real log."""

    def __init__(
        self, inner: ConversationLog | None, metrics: Metrics, include_bodies: bool = False
    ) -> None:
        self._inner = inner
        self._metrics = metrics
        self._include_bodies = include_bodies

    def __getattr__(self, name: str) -> Any:
        """Everything but writing goes to the real log untouched: the conversation history, the
        threads it knows, closing. (Without this, a runner's core lost its history from the log.)"""
        if name.startswith("_") or self._inner is None:
            raise AttributeError(name)
        return getattr(self._inner, name)

    def record(self, exchange: Exchange) -> None:
        self._metrics.observe(exchange)
        logger.info("exchange", extra=exchange_fields(exchange, self._include_bodies))
        if self._inner is None:
            return
        try:
            self._inner.record(exchange)
        except Exception:
            self._metrics.error("log_write")
            raise


class CountingGenerator:
    """Forwards to a Generator, counting its failures by exception type before re-raising."""

    def __init__(self, inner: Generator, metrics: Metrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.model_id = inner.model_id

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        try:
            return self._inner.generate(request, on_token)
        except Exception as exc:
            self._metrics.error(type(exc).__name__)
            raise


class OpsServer:
    """`/healthz` (the process serves), `/readyz` (every check passes), `/metrics` (Prometheus)."""

    def __init__(
        self,
        metrics: Metrics,
        checks: Mapping[str, Check] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        check_timeout_s: float = 3.0,
    ) -> None:
        self.metrics = metrics
        self._checks = dict(checks or {})
        self.host = host
        self._port = port
        self._timeout = check_timeout_s
        self._runner: web.AppRunner | None = None
        self.port = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics)
        return app

    async def start(self) -> int:
        """Binds the port (0 picks a free one) and returns it."""
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self._port).start()
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _readyz(self, _: web.Request) -> web.Response:
        names = list(self._checks)
        results = await asyncio.gather(*(self._run(name) for name in names))
        report: dict[str, Any] = dict(zip(names, results, strict=True))
        ready = all(results)
        return web.json_response(
            {"status": "ready" if ready else "not ready", "checks": report},
            status=200 if ready else 503,
        )

    async def _run(self, name: str) -> bool:
        """A check that raises or outlasts the time-out counts as failed (and as an error)."""
        check = self._checks[name]
        try:
            if inspect.iscoroutinefunction(check):
                outcome = await asyncio.wait_for(check(), self._timeout)
            else:
                outcome = await asyncio.wait_for(asyncio.to_thread(check), self._timeout)
            return bool(outcome)
        except Exception:
            logger.warning("readiness check %s failed", name, exc_info=True)
            self.metrics.error(f"readiness_{name}")
            return False

    async def _metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.metrics.registry),
            headers={"Content-Type": CONTENT_TYPE_LATEST},
        )


def serve_in_thread(server: OpsServer) -> threading.Thread:
    """Runs the ops port on its own event loop, for runners that are not asyncio (uvicorn, Bolt)."""
    started = threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        try:
            await server.start()
        except OSError as exc:
            failure.append(exc)
            return
        finally:
            started.set()
        await asyncio.Event().wait()  # until the process exits; the thread is a daemon

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="ops", daemon=True)
    thread.start()
    started.wait(10)
    if failure:
        raise ConfigurationError(f"Cannot open the operations port: {failure[0]}")
    return thread


def database_check(url: str) -> Callable[[], bool]:
    """Readiness of the conversation log's database: one `SELECT 1` on a pooled connection."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, pool_pre_ping=True)

    def reachable() -> bool:
        with engine.connect() as connection:
            return connection.execute(text("SELECT 1")).scalar() == 1

    return reachable


def readiness_checks(settings: Settings, generator: Generator) -> dict[str, Check]:
    """What `/readyz` asks: the log's database, the inference server when remote, Redis when shared.

    The in-process model needs no check: it is loaded before the operations port opens.
    """
    import redis

    from bot.storage.engine import database_url

    checks: dict[str, Check] = {
        "database": database_check(database_url(settings.data_dir, settings.database_url))
    }
    ping = getattr(generator, "ping", None)
    if callable(ping):
        checks["model"] = ping
    if settings.redis_url:
        client = redis.Redis.from_url(
            settings.redis_url, socket_timeout=2, socket_connect_timeout=2
        )
        checks["redis"] = client.ping
    return checks


class Operations:
    """One bot process's metrics and readiness, served when `PERSONABOT_OPS_PORT` is set.

    Building it wraps the core's log and generator in the counting wrappers, so every exchange
    is counted and logged as one structured line even when the port is off.
    """

    def __init__(
        self,
        core: DialogueCore,
        depth: Callable[[], int] | None = None,
        extra_checks: Mapping[str, Check] | None = None,
    ) -> None:
        settings = core.settings
        self.metrics = Metrics()
        checks = {**readiness_checks(settings, core.generator), **(extra_checks or {})}
        core.log = CountingLog(core.log, self.metrics, settings.log_message_bodies)
        core.generator = CountingGenerator(core.generator, self.metrics)
        if depth is not None:
            self.metrics.track_queue(depth)
        self.server: OpsServer | None = None
        if settings.ops_port is not None:
            self.server = OpsServer(self.metrics, checks, settings.ops_host, settings.ops_port)

    async def start(self) -> int | None:
        """Opens the port on the running loop; returns it (None when the port is off)."""
        if self.server is None:
            return None
        try:
            port = await self.server.start()
        except OSError as exc:
            raise ConfigurationError(f"Cannot open the operations port: {exc}") from None
        self._announce()
        return port

    def start_in_thread(self) -> int | None:
        """For runners that are not asyncio: the port gets its own loop in a daemon thread."""
        if self.server is None:
            return None
        serve_in_thread(self.server)
        self._announce()
        return self.server.port

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop()

    def _announce(self) -> None:
        assert self.server is not None
        logger.info(
            "operations port: /healthz /readyz /metrics",
            extra={"ops_host": self.server.host, "ops_port": self.server.port},
        )
