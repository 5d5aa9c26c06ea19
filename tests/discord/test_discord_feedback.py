"""👍/👎 on the real moderators' log: one vote per person, changeable, working across a restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlmodel import Session, select

from bot.core import DialogueCore
from bot.factory import build_core
from bot.settings import load_settings
from bot.storage import SqlConversationLog, open_log
from bot.storage.models import Vote
from tests.discord.conftest import BotFactory
from tests.discord.fake_discord import ALICE, GENERAL, FakeDiscord, answered, until
from tests.fakes import ScriptedGenerator

QUESTION = "Why did Yeltsin feel betrayed?"
EPHEMERAL = 64


@pytest.fixture
def sql_core(tmp_path: Path) -> Iterator[DialogueCore]:
    settings = load_settings(data_dir=tmp_path / "data")
    log = open_log(settings)
    yield build_core(settings, generator=ScriptedGenerator(), log=log)
    log.close()


def _votes(store: SqlConversationLog) -> list[tuple[str, str, int]]:
    with Session(store.engine) as session:
        return [(v.exchange_id, v.voter, v.value) for v in session.exec(select(Vote)).all()]


def _buttons(message: dict[str, object]) -> dict[str, str]:
    rows = message["components"]
    assert isinstance(rows, list)
    return {b["emoji"]["name"]: b["custom_id"] for row in rows for b in row["components"]}


async def test_a_vote_is_one_row_per_person_changeable_and_survives_a_restart(
    fake: FakeDiscord, start_bot: BotFactory, sql_core: DialogueCore
) -> None:
    store = sql_core.log
    assert isinstance(store, SqlConversationLog)
    first = await start_bot(with_core=sql_core, with_moderation=store)
    await fake.dispatch("MESSAGE_CREATE", fake.user_message(QUESTION, mention_bot=True))
    answer = (await answered(fake, GENERAL))[0]
    buttons = _buttons(answer)
    assert set(buttons) == {"👍", "👎"}

    await fake.dispatch("INTERACTION_CREATE", fake.click(answer["id"], buttons["👍"]))
    confirm = (await until(lambda: fake.calls("POST", r"/interactions/.*")))[0]
    assert confirm.body["data"]["flags"] & EPHEMERAL
    await first.close()

    second = await start_bot(with_core=sql_core, with_moderation=store)
    assert len(second.sent) == 0  # the restarted bot knows the reply only from its button
    await fake.dispatch("INTERACTION_CREATE", fake.click(answer["id"], buttons["👎"]))
    await until(lambda: len(fake.calls("POST", r"/interactions/.*")) == 2)
    [(exchange_id, voter, value)] = _votes(store)
    assert (voter, value) == (f"discord:{ALICE}", -1)
    assert store.votes(exchange_id) == (0, 1)
    detail = store.get_exchange(exchange_id)
    assert detail.platform_message_id == answer["id"]
    assert (
        detail.permalink
        == f"https://discord.com/channels/{answer['guild_id']}/{GENERAL}/{answer['id']}"
    )
    assert detail.delivery == "delivered"

    # Reporting works after the restart too: the exchange is read from the buttons.
    await fake.dispatch("INTERACTION_CREATE", fake.message_command("Report reply", answer["id"]))
    follow_up = (await until(lambda: fake.calls("POST", r"/webhooks/\d+/[^/]+")))[0]
    assert "moderators will review" in follow_up.body["content"]
    assert [f.exchange_id for f in store.flags()] == [exchange_id]
