"""A seeded conversation log (written by the real DialogueCore), moderator accounts, and a
signed-in HTTP client for the dashboard.

The log is seeded once per session into a SQLite file; every test gets its own copy.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from adapters.web import app as web_app
from adapters.web.app import DashboardConfig, create_app
from adapters.web.security import SignInThrottle
from bot.factory import build_core
from bot.messages import Exchange, IncomingMessage, Reply, Timings, Trace, Verdict
from bot.settings import load_settings
from bot.storage import Redactor, SqlConversationLog
from bot.storage.accounts import ModeratorAccounts
from bot.storage.engine import make_engine
from tests.fakes import ScriptedGenerator

PASSWORDS = {"alice": "alice-password-1", "bob": "bob-password-22", "root": "root-password-333"}
TENANT_A, TENANT_B = "guild-a", "team-b"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
# Cheap hashing keeps the suite fast; production uses argon2-cffi's defaults.
FAST_HASHER = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

IN_SCOPE = [
    "What did Clinton say about enlargement?",
    "What did Yeltsin think about NATO expansion?",
    "How did the Partnership for Peace start?",
    "Why did Poland want to join NATO?",
    "Was Russia ever promised that NATO would not expand?",
]
OUT_OF_SCOPE = ["What is the best pizza topping?", "Who will win the football cup?"]


@dataclass
class Seeded:
    """Ids of known exchanges in the seeded log."""

    a_general: list[str]  # guild-a, discord #general (no thread), oldest first
    a_thread: list[str]  # guild-a, discord #history thread t-1
    b_policy: list[str]  # team-b, slack C-policy
    a_ungrounded: str
    a_flag: int
    a_refused: set[
        str
    ]  # guild-a exchanges the core refused (out of the essay's scope)  # an open flag on a_general[0], reported by a Discord user


def _message(text: str, tenant: str, platform: str, channel: str, thread: str | None,
             user: str, when: datetime) -> IncomingMessage:  # fmt: skip
    return IncomingMessage(
        text=text, platform=platform, tenant=tenant, channel=channel, thread=thread,
        user_id=user, user_name=f"{user}-name", received_at=when,
    )  # fmt: skip


def _seed(directory: Path) -> Seeded:
    settings = load_settings(data_dir=directory)
    log = SqlConversationLog(make_engine(f"sqlite:///{directory / 'log.db'}"), directory / "spool",
                             Redactor())  # fmt: skip
    assert log.start()
    core = build_core(settings, generator=ScriptedGenerator(), log=log)
    now = datetime.now(UTC).replace(microsecond=0)
    a_general, a_thread, b_policy = [], [], []
    refused: set[str] = set()
    questions = IN_SCOPE + OUT_OF_SCOPE
    for index, text in enumerate(questions):
        when = now - timedelta(days=len(questions) - index, hours=index)
        user = "u-anna" if index % 2 == 0 else "u-boris"
        exchange = core.respond(_message(text, TENANT_A, "discord", "general", None, user, when))
        a_general.append(exchange.id)
        if exchange.reply.refused:
            refused.add(exchange.id)
    for index, text in enumerate(IN_SCOPE[:3]):
        when = now - timedelta(days=2, minutes=30 - index)
        exchange = core.respond(
            _message(text, TENANT_A, "discord", "history", "t-1", "u-carl", when)
        )
        a_thread.append(exchange.id)
    for index, text in enumerate(["Why did the Baltic states want to join NATO?", *IN_SCOPE[2:]]):
        when = now - timedelta(days=1, hours=index)
        exchange = core.respond(_message(text, TENANT_B, "slack", "C-policy", None, "U-dora", when))
        b_policy.append(exchange.id)
    ungrounded = Exchange(
        message=_message("Tell me about Kozyrev's favourite book", TENANT_A, "discord", "general",
                         None, "u-anna", now - timedelta(hours=3)),
        reply=Reply(text="I remember reading a great deal in those years.", grounded=False,
                    moderation=[Verdict(check="grounding", passed=False, detail="no support")],
                    timings=Timings(retrieval_ms=4, ttft_ms=120, generation_ms=900, total_ms=1030)),
        trace=Trace(prompt_version="v-test", model_id="scripted-fake", prompt="system\nquestion"),
    )  # fmt: skip
    log.record(ungrounded)
    flag = log.open_flag(a_general[0], "u-boris", "sounds off")
    assert flag.id is not None
    log.close()
    return Seeded(a_general, a_thread, b_policy, ungrounded.id, flag.id, refused)


@pytest.fixture(scope="session")
def seeded_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Seeded]:
    directory = tmp_path_factory.mktemp("seeded")
    seeded = _seed(directory)
    accounts = ModeratorAccounts(make_engine(f"sqlite:///{directory / 'log.db'}"), FAST_HASHER)
    accounts.add("alice", PASSWORDS["alice"], [TENANT_A], admin=False, actor="test")
    accounts.add("bob", PASSWORDS["bob"], [TENANT_B], admin=False, actor="test")
    accounts.add("root", PASSWORDS["root"], [], admin=True, actor="test")
    accounts.engine.dispose()
    return directory / "log.db", seeded


@pytest.fixture
def seeded(seeded_template: tuple[Path, Seeded]) -> Seeded:
    return seeded_template[1]


@pytest.fixture
def db_file(seeded_template: tuple[Path, Seeded], tmp_path: Path) -> Path:
    target = tmp_path / "log.db"
    shutil.copy(seeded_template[0], target)
    return target


@pytest.fixture
def sql_log(db_file: Path, tmp_path: Path) -> Iterator[SqlConversationLog]:
    log = SqlConversationLog(make_engine(f"sqlite:///{db_file}"), tmp_path / "spool", Redactor())
    assert log.start()
    yield log
    log.close()


@pytest.fixture
def accounts(sql_log: SqlConversationLog) -> ModeratorAccounts:
    return ModeratorAccounts(sql_log.engine, FAST_HASHER)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def test_client_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """TestClient sends `Host: testserver`; allow it here only, as Django does in tests."""
    monkeypatch.setattr(web_app, "DEFAULT_HOSTS", web_app.DEFAULT_HOSTS | {"testserver"})


@pytest.fixture
def config(clock: FakeClock) -> DashboardConfig:
    return DashboardConfig(
        throttle=SignInThrottle(free=3, per_address_free=5, base_s=60, clock=clock),
        page_size=5,
    )


@pytest.fixture
def client(
    sql_log: SqlConversationLog, accounts: ModeratorAccounts, config: DashboardConfig
) -> Iterator[TestClient]:
    with TestClient(create_app(sql_log, accounts, config), follow_redirects=False) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def sign_in(client: TestClient, name: str, password: str | None = None) -> str:
    """Signs in through the form; returns the session's CSRF token (from the next page)."""
    form = client.get("/signin")
    response = client.post(
        "/signin",
        data={"name": name, "password": password or PASSWORDS[name], "csrf": csrf_of(form.text)},
    )
    assert response.status_code == 303, response.text
    return csrf_of(client.get("/exchanges").text)
