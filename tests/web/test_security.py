"""The dashboard turned against itself (issue 16): rebinding, lock-outs, unaudited access,
plain HTTP on the network, and the inputs that used to crash it."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from adapters.cli import app as cli
from adapters.web.app import DashboardConfig, create_app
from adapters.web.security import (
    MemoryThrottleStore,
    RedisThrottleStore,
    SignInThrottle,
    allowed_host,
)
from bot.storage import InvalidInputError, SqlConversationLog
from bot.storage.accounts import ModeratorAccounts, check_password
from tests.web.conftest import PASSWORDS, FakeClock, Seeded, csrf_of, sign_in

EVIL = "rebind.evil.example"


def test_a_rebinding_page_gets_nothing(client: TestClient) -> None:
    sign_in(client, "alice")
    for method, path in (("GET", "/signin"), ("GET", "/export.jsonl"), ("POST", "/signin")):
        response = client.request(method, path, headers={"host": EVIL, "origin": f"http://{EVIL}"})
        assert response.status_code == 400, path
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert "personabot" not in response.text.lower() or "exchanges" not in response.text


@pytest.mark.parametrize(
    ("host", "allowed"),
    [
        ("127.0.0.1:8080", True),
        ("localhost", True),
        ("[::1]:8080", True),
        ("LOCALHOST:1", True),
        (EVIL, False),
        (f"{EVIL}:8080", False),
        ("127.0.0.1.evil.example", False),
        ("", False),
        (None, False),
    ],
)
def test_host_allow_list(host: str | None, allowed: bool) -> None:
    assert allowed_host(host, frozenset({"localhost", "127.0.0.1", "::1"})) is allowed


def test_failures_elsewhere_never_lock_out_the_right_password(
    sql_log: SqlConversationLog, accounts: ModeratorAccounts, clock: FakeClock
) -> None:
    config = DashboardConfig(throttle=SignInThrottle(free=3, base_s=60, clock=clock))
    app = create_app(sql_log, accounts, config)
    attacker = TestClient(app, follow_redirects=False, client=("203.0.113.9", 5000))
    token = csrf_of(attacker.get("/signin").text)
    for _ in range(50):
        attacker.post("/signin", data={"name": "alice", "password": "guess", "csrf": token})
    assert (
        attacker.post(
            "/signin", data={"name": "alice", "password": PASSWORDS["alice"], "csrf": token}
        ).status_code
        == 429
    )
    owner = TestClient(app, follow_redirects=False, client=("198.51.100.7", 5000))
    form = owner.get("/signin")
    signed = owner.post(
        "/signin",
        data={"name": "alice", "password": PASSWORDS["alice"], "csrf": csrf_of(form.text)},
    )
    assert signed.status_code == 303


def test_throttle_backs_off_and_counts_names_exactly() -> None:
    clock = FakeClock()
    throttle = SignInThrottle(free=2, base_s=1, max_s=8, clock=clock)
    waits = []
    for _ in range(7):
        throttle.failed("DMOD", "10.0.0.1")
        waits.append(throttle.retry_after("DMOD", "10.0.0.1"))
    assert waits == [0, 1, 2, 4, 8, 8, 8]
    assert throttle.retry_after("dmod", "10.0.0.1") == 0  # another account
    throttle.succeeded("DMOD", "10.0.0.1")
    assert throttle.retry_after("DMOD", "10.0.0.1") == 0
    clock.now += 3601
    assert throttle.store.failures("addr\0" + "10.0.0.1", clock.now) == (0, 0.0)


def test_throttle_memory_is_bounded() -> None:
    store = MemoryThrottleStore(forget_after_s=3600, max_keys=1000)
    throttle = SignInThrottle(store=store)
    for number in range(5000):
        throttle.failed(f"made-up-{number}", "10.0.0.1")
    assert len(store) <= 1000


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_timeout=2)
    client.ping()  # fails, never skips, when Redis is down
    yield client
    client.close()


@pytest.mark.service
def test_throttle_is_shared_through_redis(redis_client: redis.Redis) -> None:
    name = f"mod-{uuid.uuid4().hex}"
    one = SignInThrottle(free=2, base_s=30, store=RedisThrottleStore(redis_client, 60))
    other = SignInThrottle(free=2, base_s=30, store=RedisThrottleStore(redis_client, 60))
    one.failed(name, "10.0.0.5")
    other.failed(name, "10.0.0.5")  # a second dashboard process
    assert 29 <= one.retry_after(name, "10.0.0.5") <= 30
    assert not [k for k in redis_client.scan_iter("personabot:signin:*") if name.encode() in k]
    other.succeeded(name, "10.0.0.5")
    assert one.retry_after(name, "10.0.0.5") == 0


def test_sign_ins_and_exports_are_audited(client: TestClient, sql_log: SqlConversationLog) -> None:
    token = csrf_of(client.get("/signin").text)
    client.post("/signin", data={"name": "alice", "password": "wrong", "csrf": token})
    client.post("/signin", data={"name": "hunter2-typed-here", "password": "x", "csrf": token})
    sign_in(client, "alice")
    assert client.get("/export.csv").status_code == 200
    entries = [(e.actor, e.action, e.target) for e in reversed(sql_log.audit(limit=4))]
    assert entries == [
        ("alice", "sign-in-failed", "alice"),
        ("(unknown name)", "sign-in-failed", ""),
        ("alice", "sign-in", "alice"),
        ("alice", "export", ""),
    ]
    export = sql_log.audit(limit=1)[0]
    assert export.detail["format"] == "csv" and export.detail["rows"] > 0
    assert "hunter2" not in str([e.model_dump() for e in sql_log.audit(limit=10)])


def test_csv_download_is_spreadsheet_safe(client: TestClient, sql_log: SqlConversationLog) -> None:
    from tests.storage.conftest import exchange

    hostile = exchange("=cmd|' /C calc'!A0", tenant="guild-a", user_id="123456789012345678")
    sql_log.record(hostile)
    sign_in(client, "alice")
    body = client.get("/export.csv").text
    assert "'=cmd" in body and "'123456789012345678" in body
    assert "\n=cmd" not in body and ",=cmd" not in body


def test_an_overlong_form_keeps_the_moderators_text(client: TestClient, seeded: Seeded) -> None:
    token = sign_in(client, "alice")
    reason = "a careful explanation " * 120  # over the 2,000-character limit
    response = client.post(
        f"/exchanges/{seeded.a_general[1]}/flag", data={"reason": reason, "csrf": token}
    )
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/html")
    assert "at most 2000 characters" in response.text
    assert reason.strip() in response.text
    assert "<label>csrf" not in response.text  # the form's token is not echoed back


@pytest.mark.parametrize("flag_id", ["99999999999999999999", "2147483648", "0"])
def test_huge_ids_are_not_found_not_a_crash(client: TestClient, flag_id: str) -> None:
    token = sign_in(client, "alice")
    for action in ("resolve", "note", "claim"):
        response = client.post(f"/flags/{flag_id}/{action}", data={"csrf": token, "text": "x"})
        assert response.status_code == 404, (action, response.text[:200])


def test_resolving_twice_keeps_the_first_resolver(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    token = sign_in(client, "alice")
    first = client.post(f"/flags/{seeded.a_flag}/resolve", data={"csrf": token})
    assert first.status_code == 303
    again = client.post(f"/flags/{seeded.a_flag}/resolve", data={"csrf": token})
    assert again.status_code == 400 and "already resolved by alice" in again.text


def test_an_unexpected_failure_still_carries_the_security_headers(
    sql_log: SqlConversationLog, accounts: ModeratorAccounts, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TestClient(
        create_app(sql_log, accounts, DashboardConfig()),
        raise_server_exceptions=False,
        follow_redirects=False,
    )
    sign_in(client, "alice")

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(SqlConversationLog, "list_exchanges", broken)
    monkeypatch.setattr("bot.storage.view.LogView.list_exchanges", broken)
    response = client.get("/exchanges")
    assert response.status_code == 500
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "disk on fire" not in response.text


@pytest.mark.parametrize(
    "weak", ["aaaaaaaaaa", "ababababab", "1234567890", "qwertyuiop", "Password12!"]
)
def test_weak_passwords_are_refused(weak: str) -> None:
    with pytest.raises(InvalidInputError):
        check_password(weak)


def test_strong_enough_passwords_pass() -> None:
    assert check_password("correct horse battery") == "correct horse battery"


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "::"])
def test_the_dashboard_refuses_plain_http_off_loopback(host: str) -> None:
    result = CliRunner().invoke(cli, ["dashboard", "--host", host, "--port", "0"])
    assert result.exit_code != 0
    assert "Refusing to serve the dashboard" in str(result.exception)
