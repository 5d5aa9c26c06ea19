"""With the real SQL conversation log (SQLite): one log row per event, reports land as flags, bans hold."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from adapters.slack.app import SlackBot
from adapters.slack.server import build_bot
from adapters.slack.settings import SlackSettings
from bot.factory import build_core
from bot.settings import Settings
from bot.storage import open_log
from bot.storage.api import ExchangeFilter
from bot.storage.log import SqlConversationLog
from tests.fakes import ScriptedGenerator
from tests.slack.conftest import QUESTION, SlackHarness, mention, serve
from tests.slack.mock_slack import BOT_ID, BOT_USER_ID, TEAM_ID, MockSlack

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def sql_log(settings: Settings) -> Iterator[SqlConversationLog]:
    log = open_log(settings)
    yield log
    log.close()


@pytest.fixture
def sql_bot(
    settings: Settings, slack_settings: SlackSettings, sql_log: SqlConversationLog
) -> Iterator[SlackBot]:
    # build_bot is what `personabot slack` runs: auth.test, then the core's log as moderation store.
    bot, app_token = build_bot(
        slack_settings, lambda: build_core(settings, generator=ScriptedGenerator(), log=sql_log)
    )
    assert app_token is None
    assert bot.moderation is sql_log
    yield bot
    bot.close()


def test_retried_event_is_one_row_and_its_report_is_a_flag(
    sql_bot: SlackBot, sql_log: SqlConversationLog, mock_slack: MockSlack
) -> None:
    url, server, thread = serve(sql_bot)
    slack = SlackHarness(url, mock_slack)
    try:
        body = slack.event_body(mention(QUESTION), event_id="EvSQL")
        for attempt in range(4):
            headers = {"X-Slack-Retry-Num": str(attempt)} if attempt else None
            assert slack.post(body, "application/json", extra_headers=headers).status_code == 200
        update = mock_slack.wait_for("chat.stopStream")[0].params
        time.sleep(0.3)
        sql_log.flush()
        rows = sql_log.list_exchanges(ExchangeFilter(platform="slack"))
        assert rows.total == 1
        row = rows.items[0]
        assert (row.tenant, row.channel, row.user_id, row.user_name) == (
            TEAM_ID,
            "C1",
            "U1",
            "alice",
        )

        reported = {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "ts": update["ts"]}
        slack.shortcut(
            {
                "type": "message_action",
                "callback_id": "report_reply",
                "trigger_id": "1.2.3",
                "team": {"id": TEAM_ID},
                "user": {"id": "U5"},
                "channel": {"id": "C1"},
                "message": reported,
            }
        )
        form = mock_slack.wait_for("views.open")[0].params["view"]
        slack.shortcut(
            {
                "type": "view_submission",
                "team": {"id": TEAM_ID},
                "user": {"id": "U5", "team_id": TEAM_ID},
                "view": {**form, "state": {"values": {}}},
            }
        )
        flags = sql_log.flags()
        assert [(f.exchange_id, f.reporter) for f in flags] == [(row.id, f"slack:{TEAM_ID}:U5")]

        sql_log.ban("slack", TEAM_ID, "U1", actor="moderator", reason="test")
        slack.event(mention(QUESTION, ts="1699999999.000777"))
        time.sleep(0.5)
        sql_log.flush()
        assert sql_log.list_exchanges(ExchangeFilter(platform="slack")).total == 1
    finally:
        slack.http.close()
        server.should_exit = True
        thread.join(10)
