"""A thread is one conversation for everyone in it, whichever worker answers and after a restart:
thread following and the conversation's history come from the log (and Redis), not a process."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis

from adapters.slack.app import SlackBot, web_client
from adapters.slack.server import SharedState, build_bot, thread_follower
from adapters.slack.settings import SlackSettings
from bot.factory import build_core
from bot.messages import Exchange
from bot.serving.redis_state import connect
from bot.settings import Settings
from bot.storage import open_log
from bot.storage.api import ExchangeFilter
from bot.storage.log import SqlConversationLog
from tests.fakes import MemoryLog, ScriptedGenerator
from tests.slack.conftest import QUESTION, FakeModeration, SlackHarness, mention, serve
from tests.slack.mock_slack import TEAM_ID, MockSlack

pytestmark = pytest.mark.timeout(90)
THREAD = "1699999999.000500"
FOLLOW_UP = "And why did they want that?"


def _in_thread(text: str, user: str, ts: str, thread: str = THREAD) -> dict[str, Any]:
    """A message in a channel thread, without a mention."""
    return {
        "type": "message",
        "channel_type": "channel",
        "channel": "C1",
        "user": user,
        "text": text,
        "ts": ts,
        "thread_ts": thread,
    }


@contextmanager
def _worker(bot: SlackBot, mock: MockSlack) -> Iterator[SlackHarness]:
    """One HTTP worker: its own uvicorn in front of its own Bolt app and core."""
    url, server, thread = serve(bot)
    harness = SlackHarness(url, mock)
    try:
        yield harness
    finally:
        harness.http.close()
        server.should_exit = True
        thread.join(10)
        bot.close()


def _read_as(exchange: Exchange) -> str:
    """How the core read the turn: the question with what it referred back to."""
    return str(exchange.trace.options.get("read_as") or "")


def test_a_second_users_follow_up_is_answered_with_the_threads_context(
    slack: SlackHarness, mock_slack: MockSlack, log: MemoryLog
) -> None:
    slack.event(mention(QUESTION, ts=THREAD, user="U1"))
    mock_slack.wait_for("chat.stopStream")
    slack.event(_in_thread(FOLLOW_UP, "U2", "1699999999.000501"))
    mock_slack.wait_for("chat.stopStream", count=2)

    first, second = log.exchanges
    assert (first.message.user_id, second.message.user_id) == ("U1", "U2")
    assert second.message.conversation_key() == first.message.conversation_key()
    # The follow-up was read with the first question, which U2 never typed.
    assert "Why do emerging democracies" in _read_as(second)
    starts = mock_slack.of("chat.startStream")
    assert [c.params["thread_ts"] for c in starts] == [THREAD, THREAD]
    assert starts[1].params["recipient_user_id"] == "U2"


def _sql_bot(
    settings: Settings, slack_settings: SlackSettings
) -> tuple[SlackBot, SqlConversationLog]:
    """A worker as `personabot slack` builds it: its own log connection to the shared database
    and its own core, whose conversation cache starts empty."""
    log = open_log(settings)
    core = lambda: build_core(settings, generator=ScriptedGenerator(), log=log)  # noqa: E731
    bot, _ = build_bot(slack_settings, core)
    return bot, log


def _read_as_in_log(log: SqlConversationLog, user: str) -> str:
    log.flush()
    rows = log.list_exchanges(ExchangeFilter(platform="slack")).items
    [row] = [row for row in rows if row.user_id == user]
    return str(log.get_exchange(row.id).options.get("read_as") or "")


def test_follow_ups_reach_a_second_worker_and_survive_a_restart(
    settings: Settings, slack_settings: SlackSettings, mock_slack: MockSlack
) -> None:
    first_bot, first_log = _sql_bot(settings, slack_settings)
    second_bot, second_log = _sql_bot(settings, slack_settings)
    try:
        with _worker(first_bot, mock_slack) as first, _worker(second_bot, mock_slack) as second:
            first.event(mention(QUESTION, ts=THREAD, user="U1"))
            mock_slack.wait_for("chat.stopStream")
            first_log.flush()
            # The load balancer sends the next message of the thread to the other worker.
            second.event(_in_thread(FOLLOW_UP, "U2", "1699999999.000501"))
            mock_slack.wait_for("chat.stopStream", count=2)
        assert "Why do emerging democracies" in _read_as_in_log(second_log, "U2")
        # Both workers are gone; a new one starts on the same database.
        restarted_bot, restarted_log = _sql_bot(settings, slack_settings)
        with _worker(restarted_bot, mock_slack) as restarted:
            restarted.event(_in_thread("What did they fear from it?", "U3", "1699999999.000502"))
            mock_slack.wait_for("chat.stopStream", count=3)
            # A thread the persona never answered in stays someone else's conversation.
            restarted.event(_in_thread(FOLLOW_UP, "U4", "1699999999.000601", "1699999999.000600"))
            time.sleep(0.5)
        assert FOLLOW_UP in _read_as_in_log(restarted_log, "U3")  # read with the turn before
        rows = restarted_log.list_exchanges(ExchangeFilter(platform="slack")).items
        assert sorted(row.user_id for row in rows) == ["U1", "U2", "U3"]
        assert {row.thread for row in rows} == {THREAD}
        restarted_log.close()
    finally:
        first_log.close()
        second_log.close()


@pytest.fixture
def redis_client() -> redis.Redis:
    return connect("redis://127.0.0.1:6379/0")  # fails, not skips, when Redis is missing


def test_with_redis_a_thread_is_followed_before_its_answer_is_logged(
    core: Any,
    slack_settings: SlackSettings,
    moderation: FakeModeration,
    mock_slack: MockSlack,
    redis_client: redis.Redis,
) -> None:
    # Two workers whose logs share nothing: only Redis can tell the second about the thread.
    thread = f"{random.randrange(10**9, 10**10)}.000500"  # a thread no earlier run has marked
    token = slack_settings.credentials()[0]

    def bot_on(log: MemoryLog) -> SlackBot:
        worker_core = build_core(core.settings, generator=ScriptedGenerator(), log=log)
        follower = thread_follower(worker_core, SharedState(redis=redis_client))
        client = web_client(slack_settings, token)
        return SlackBot(worker_core, slack_settings, moderation, client, threads=follower)

    first_log, second_log = MemoryLog(), MemoryLog()
    key = f"pb:slack:thread:slack:{TEAM_ID}:C1:{thread}"
    try:
        with (
            _worker(bot_on(first_log), mock_slack) as first,
            _worker(bot_on(second_log), mock_slack) as second,
        ):
            first.event(mention(QUESTION, ts=thread))
            mock_slack.wait_for("assistant.threads.setStatus")  # the mention was taken up
            assert redis_client.exists(key)
            second.event(_in_thread(FOLLOW_UP, "U2", f"{thread[:-3]}501", thread))
            mock_slack.wait_for("chat.stopStream", count=2)
        assert [e.message.user_id for e in second_log.exchanges] == ["U2"]
    finally:
        redis_client.delete(key)
