"""One Slack HTTP worker for the two-process load test (`python -m tests.scale.worker`).

It is what a production worker wires together, with the scripted generator in place of the model:
PostgreSQL conversation log, Redis rate limits and event de-duplication, the operations port.
"""

from __future__ import annotations

import os

import uvicorn

from adapters.slack.app import SlackBot, web_client
from adapters.slack.server import http_app
from adapters.slack.settings import load_slack_settings
from bot.factory import build_core
from bot.ops import (
    CountingGenerator,
    CountingLog,
    Metrics,
    OpsServer,
    database_check,
    serve_in_thread,
)
from bot.redis_state import RedisDeduplicator, RedisRateLimiter, connect
from bot.settings import load_settings
from bot.storage.engine import database_url, make_engine
from bot.storage.log import SqlConversationLog
from tests.fakes import ScriptedGenerator


def main() -> None:
    settings = load_settings()
    slack = load_slack_settings()
    token, secret, _ = slack.credentials()
    prefix = os.environ["SCALE_KEY_PREFIX"]
    assert settings.redis_url and settings.database_url, "REDIS_URL and DATABASE_URL are needed"
    redis_client = connect(settings.redis_url)
    url = database_url(settings.data_dir, settings.database_url)
    log = SqlConversationLog(make_engine(url), settings.data_dir / "spool")
    log.start()
    metrics = Metrics()
    core = build_core(
        settings,
        generator=CountingGenerator(ScriptedGenerator(), metrics),
        log=CountingLog(log, metrics),
    )
    bot = SlackBot(
        core,
        slack,
        log,
        web_client(slack, token),
        signing_secret=secret,
        deduplicator=RedisDeduplicator(redis_client, prefix=prefix + "seen:"),
        limiter=RedisRateLimiter(
            redis_client, slack.rate_limit_count, slack.rate_limit_seconds, prefix + "rate:"
        ),
    )
    checks = {"redis": redis_client.ping, "database": database_check(url)}
    serve_in_thread(OpsServer(metrics, checks, settings.ops_host, settings.ops_port))
    try:
        uvicorn.run(
            http_app(bot.app, slack.path), host=slack.host, port=slack.port, log_level="warning"
        )
    finally:
        bot.close()
        log.close()


if __name__ == "__main__":
    main()
