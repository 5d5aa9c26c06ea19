"""Helpers for the headless-Chromium tests: serve an app on a free loopback port, seed a queue,
and check a page the way a moderator on a phone would (no sideways scrolling)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Page, ViewportSize

from bot.messages import Exchange, IncomingMessage, Reply, ReplyKind, Timings, TokenCounts, Trace
from bot.settings import PROJECT_ROOT
from bot.storage import SqlConversationLog

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
DESKTOP: ViewportSize = {"width": 1440, "height": 900}
PHONE: ViewportSize = {"width": 390, "height": 844}


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn on 127.0.0.1, port chosen by the OS; yields its base URL."""
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "dashboard did not start"
        time.sleep(0.05)
    port = served.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        served.should_exit = True
        thread.join(timeout=10)


def record(
    log: SqlConversationLog,
    text: str,
    reply: str,
    kind: ReplyKind,
    *,
    tenant: str = "guild-a",
    platform: str = "discord",
    channel: str = "queue-test",
    thread: str | None = None,
    user: str = "u-erin",
    when: datetime | None = None,
    model_tokens: int = 0,
) -> str:
    """Logs one exchange as an adapter would (no model involved) and returns its id."""
    refused = kind not in {ReplyKind.ANSWER, ReplyKind.NOT_DIRECT}
    exchange = Exchange(
        message=IncomingMessage(
            text=text, platform=platform, tenant=tenant, channel=channel, thread=thread,
            user_id=user, user_name=f"{user}-name",
            received_at=when or datetime.now(UTC) - timedelta(hours=1),
        ),
        reply=Reply(
            text=reply, kind=kind, refused=refused, grounded=not refused,
            timings=Timings(total_ms=900.0 if model_tokens else 3.0),
            tokens=TokenCounts(prompt=100 if model_tokens else 0, completion=model_tokens),
        ),
        trace=Trace(prompt_version="v-test", model_id="scripted-fake", prompt="system\nquestion"),
    )  # fmt: skip
    log.record(exchange)
    return exchange.id


def no_sideways_scroll(page: Page) -> None:
    size = page.viewport_size
    assert size is not None
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], f"{page.url} is {width} px wide on a {size['width']} px screen"


def shoot(page: Page, name: str, full: bool = False) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path), full_page=full)
    return path
