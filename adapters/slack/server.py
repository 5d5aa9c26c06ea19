"""Starting the Slack app: credentials checked first, then Socket Mode or the HTTP endpoint."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from urllib.error import URLError

import redis
import uvicorn
from slack_bolt import App, BoltRequest
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_starlette_response
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapters.slack.app import REPORT_TTL_S, SlackBot, web_client
from adapters.slack.dedup import Deduplicator
from adapters.slack.settings import SlackSettings
from adapters.slack.threads import ConversationIndex, LogThreads, RedisThreads, ThreadFollower
from adapters.stopping import exit_cleanly_on_sigterm
from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.errors import ConfigurationError, PersonabotError
from bot.serving.logging_setup import configure_logging
from bot.serving.ops import Operations
from bot.serving.ratelimit import RateLimiter
from bot.serving.redis_state import RedisDeduplicator, RedisRateLimiter, connect
from bot.settings import Settings, load_settings

logger = logging.getLogger(__name__)
MAX_BODY_BYTES = 1_000_000
MAX_TIMESTAMP_DIGITS = 12


def check_token(client: WebClient) -> dict[str, str]:
    """auth.test once at start, so a wrong token is one clear line, not a failure per event."""
    try:
        result = client.auth_test()
    except SlackApiError as exc:
        raise ConfigurationError(
            f"Slack rejected SLACK_BOT_TOKEN ({exc.response.get('error', 'unknown error')}): "
            "copy the Bot User OAuth Token again, and reinstall the app if it was revoked."
        ) from None
    except (URLError, OSError) as exc:
        raise PersonabotError(f"Cannot reach Slack at {client.base_url}: {exc}") from None
    keys = ("team", "team_id", "user", "user_id", "url")
    return {key: str(result.get(key) or "") for key in keys}


def check_app_token(client: WebClient, app_token: str) -> None:
    """apps.connections.open with the app token: fails now rather than on every reconnect."""
    try:
        client.apps_connections_open(app_token=app_token)
    except SlackApiError as exc:
        raise ConfigurationError(
            f"Slack rejected SLACK_APP_TOKEN ({exc.response.get('error', 'unknown error')}): it "
            "must be an app-level token with connections:write, and Socket Mode must be on."
        ) from None


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


class _TooLargeError(Exception):
    """The body grew past the cap while it was being read."""


async def _read_capped(request: Request, limit: int) -> bytes:
    """The body, refused as soon as it passes `limit`, so memory stays bounded whatever is sent
    (a Content-Length that lies, or a chunked body with none)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLargeError
        chunks.append(chunk)
    return b"".join(chunks)


def http_app(app: App, path: str = "/slack/events") -> Starlette:
    """Events, commands and shortcuts on one signed endpoint; Bolt verifies each signature.

    Malformed requests are turned away here with 400/401/413 before Bolt sees them, so a bad
    header can never surface as a 5xx; `dispatch` runs in a thread so the loop stays free.
    """

    async def events(request: Request) -> Response:
        timestamp = request.headers.get("x-slack-request-timestamp")
        if timestamp is None or request.headers.get("x-slack-signature") is None:
            return _error(401, "missing Slack signature headers")
        # Unix seconds: ten digits until the year 2286. A longer number is no time at all, and
        # Bolt's float arithmetic on it would overflow.
        if not (
            timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= MAX_TIMESTAMP_DIGITS
        ):
            return _error(400, "malformed X-Slack-Request-Timestamp")
        length = request.headers.get("content-length")
        if length is not None:
            if not (length.isascii() and length.isdigit()):
                return _error(400, "malformed Content-Length")
            if int(length) > MAX_BODY_BYTES:
                return _error(413, "request body too large")
        try:
            body = await _read_capped(request, MAX_BODY_BYTES)
        except _TooLargeError:
            return _error(413, "request body too large")
        try:
            bolt_request = BoltRequest(
                body=body.decode("utf-8"),
                query=request.url.query,
                headers={key: [value] for key, value in request.headers.items()},
            )
        except (UnicodeDecodeError, ValueError, AttributeError, TypeError):
            # not UTF-8, not JSON or a form, or JSON that is not an object (Bolt assumes one)
            return _error(400, "malformed request body")
        response = await run_in_threadpool(app.dispatch, bolt_request)
        return to_starlette_response(response)

    async def health(_: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[Route(path, events, methods=["POST"]), Route("/healthz", health, methods=["GET"])]
    )


def moderation_store_of(core: DialogueCore) -> ModerationStore:
    """The core's conversation log doubles as the moderators' store (flags, bans) when it is one."""
    log = core.log
    if callable(getattr(log, "flag", None)) and callable(getattr(log, "is_banned", None)):
        return log  # type: ignore[return-value]
    raise ConfigurationError(
        "The Slack app needs the moderation log (flags and bans), and none is configured: "
        "see docs/moderation-log.md."
    )


@dataclass(frozen=True)
class SharedState:
    """What several workers must agree on; empty without REDIS_URL (each process its own)."""

    deduplicator: Deduplicator | None = None
    limiter: RateLimiter | None = None
    reports: Deduplicator | None = None
    redis: redis.Redis | None = None


def shared_state(core_settings: Settings, settings: SlackSettings) -> SharedState:
    """With REDIS_URL, workers share event ids, rate limits, reports and followed threads."""
    if not core_settings.redis_url:
        return SharedState()
    client = connect(core_settings.redis_url)
    return SharedState(
        RedisDeduplicator(client, ttl_s=int(settings.dedup_ttl_seconds), prefix="pb:slack:seen:"),
        RedisRateLimiter(
            client, settings.rate_limit_count, settings.rate_limit_seconds, "pb:slack:rate:"
        ),
        RedisDeduplicator(client, ttl_s=REPORT_TTL_S, prefix="pb:slack:report:"),
        client,
    )


def thread_follower(core: DialogueCore, state: SharedState) -> ThreadFollower | None:
    """Threads followed from the conversation log, and from Redis first when it is there."""
    from_log = LogThreads(core.log) if isinstance(core.log, ConversationIndex) else None
    return RedisThreads(state.redis, from_log) if state.redis is not None else from_log


def build_bot(
    settings: SlackSettings,
    core_factory: Callable[[], DialogueCore],
    moderation: ModerationStore | None = None,
) -> tuple[SlackBot, str | None]:
    """Checks the credentials before the (slow) core loads; returns the bot and its app token."""
    token, secret, app_token = settings.credentials()
    client = web_client(settings, token)
    identity = check_token(client)
    if app_token:
        check_app_token(client, app_token)
    logger.info(
        "Slack workspace %s (%s) as %s", identity["team"], identity["team_id"], identity["user"]
    )
    core = core_factory()
    store = moderation or moderation_store_of(core)
    state = shared_state(core.settings, settings)
    bot = SlackBot(
        core,
        settings,
        store,
        client,
        signing_secret=secret,
        deduplicator=state.deduplicator,
        limiter=state.limiter,
        threads=thread_follower(core, state),
        reports=state.reports,
        workspace_url=identity["url"],
    )
    return bot, app_token


def serve(
    settings: SlackSettings,
    core_factory: Callable[[], DialogueCore],
    moderation: ModerationStore | None = None,
) -> None:
    """Runs until interrupted: Socket Mode with an app token, the HTTP endpoint otherwise.

    Logging is set up first, so every line from start-up on (the workspace check, Bolt's own)
    is JSON with the tokens redacted.
    """
    secrets = [s for s in settings.credentials() if s]
    configure_logging(load_settings(), extra_secrets=secrets)
    bot, app_token = build_bot(settings, core_factory, moderation)
    try:
        Operations(bot.core, depth=lambda: bot.pending).start_in_thread()
        if app_token:
            handler = SocketModeHandler(bot.app, app_token, web_client=bot.app.client)
            handler.connect()  # type: ignore[no-untyped-call]
            logger.info("Slack Socket Mode connected; Ctrl+C or SIGTERM stops")
            try:
                wait_for_stop_signal()
            finally:
                handler.close()  # type: ignore[no-untyped-call]
        else:
            with exit_cleanly_on_sigterm():
                uvicorn.run(
                    http_app(bot.app, settings.path),
                    host=settings.host,
                    port=settings.port,
                    log_config=None,  # uvicorn's records go through the JSON, redacting handler
                )
    finally:
        bot.close()  # waits for the answers in progress


def wait_for_stop_signal() -> None:
    """Blocks until SIGTERM (Docker's stop) or SIGINT, so that shutdown is graceful: the
    Socket Mode connection is closed and answers in progress finish before the log is closed."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = [signal.signal(signum, lambda *_: stop.set()) for signum in signals]
    try:
        stop.wait()
    finally:
        for signum, handler in zip(signals, previous, strict=True):
            signal.signal(signum, handler)
