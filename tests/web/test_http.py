"""The dashboard over HTTP (FastAPI's TestClient): sign-in, sessions, CSRF, throttling, tenant
isolation, every action's audit entry, filters, paging and exports."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from adapters.web.app import SESSION_COOKIE, DashboardConfig, create_app
from bot.storage import SqlConversationLog
from bot.storage.accounts import ModeratorAccounts
from bot.storage.models import ModeratorSession
from bot.storage.view import utcnow
from tests.web.conftest import PASSWORDS, TENANT_A, TENANT_B, FakeClock, Seeded, csrf_of, sign_in


def _session_cookie(client: TestClient) -> str:
    value = client.cookies.get(SESSION_COOKIE)
    assert value
    return value


def test_sign_in_sets_a_hardened_session_cookie(client: TestClient) -> None:
    form = client.get("/signin")
    response = client.post(
        "/signin",
        data={"name": "alice", "password": PASSWORDS["alice"], "csrf": csrf_of(form.text)},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/exchanges"
    cookie = next(
        h for h in response.headers.get_list("set-cookie") if h.startswith(f"{SESSION_COOKIE}=")
    )
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    assert "Max-Age=28800" in cookie


def test_secure_cookie_option(sql_log: SqlConversationLog, accounts: ModeratorAccounts) -> None:
    app = create_app(sql_log, accounts, DashboardConfig(secure_cookies=True))
    with TestClient(app, base_url="https://testserver", follow_redirects=False) as client:
        form = client.get("/signin")
        response = client.post(
            "/signin",
            data={"name": "bob", "password": PASSWORDS["bob"], "csrf": csrf_of(form.text)},
        )
        assert response.status_code == 303
        assert all("Secure" in h for h in response.headers.get_list("set-cookie"))


def test_pages_need_a_session_and_return_after_sign_in(client: TestClient, seeded: Seeded) -> None:
    target = f"/exchanges/{seeded.a_general[1]}"
    response = client.get(target)
    assert response.status_code == 303
    assert response.headers["location"] == f"/signin?next=%2Fexchanges%2F{seeded.a_general[1]}"
    form = client.get(response.headers["location"])
    signed = client.post(
        "/signin",
        data={
            "name": "alice",
            "password": PASSWORDS["alice"],
            "csrf": csrf_of(form.text),
            "next": target,
        },
    )
    assert signed.headers["location"] == target
    # An off-site "next" is ignored.
    client.cookies.clear()
    form = client.get("/signin")
    signed = client.post(
        "/signin",
        data={"name": "alice", "password": PASSWORDS["alice"], "csrf": csrf_of(form.text),
              "next": "//evil.example/x"},
    )  # fmt: skip
    assert signed.headers["location"] == "/exchanges"


def test_wrong_password_and_unknown_name_get_the_same_answer(client: TestClient) -> None:
    for name, password in (("alice", "not-her-password"), ("mallory", "whatever-it-is")):
        form = client.get("/signin")
        response = client.post(
            "/signin", data={"name": name, "password": password, "csrf": csrf_of(form.text)}
        )
        assert response.status_code == 401
        assert "Wrong name or password." in response.text
        assert SESSION_COOKIE not in client.cookies


def test_failed_sign_ins_are_throttled_per_account(client: TestClient, clock: FakeClock) -> None:
    token = csrf_of(client.get("/signin").text)
    for _ in range(3):
        bad = client.post("/signin", data={"name": "alice", "password": "nope", "csrf": token})
        assert bad.status_code == 401
    # Even the right password is refused from this address for a while (a backoff, not a lock).
    right = {"name": "alice", "password": PASSWORDS["alice"], "csrf": token}
    blocked = client.post("/signin", data=right)
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) == 60
    assert "Too many failed sign-ins" in blocked.text
    # Another account from the same address is not yet affected (its limit is higher).
    other = client.post(
        "/signin", data={"name": "bob", "password": PASSWORDS["bob"], "csrf": token}
    )
    assert other.status_code == 303
    clock.now += 601
    right["csrf"] = csrf_of(client.get("/signin").text)  # a successful sign-in used the last
    assert client.post("/signin", data=right).status_code == 303


def test_failed_sign_ins_are_throttled_per_address(client: TestClient, clock: FakeClock) -> None:
    token = csrf_of(client.get("/signin").text)
    for number in range(5):
        name = f"guess{number}"  # a different account each time: the per-account limit never hits
        bad = client.post("/signin", data={"name": name, "password": "x" * 12, "csrf": token})
        assert bad.status_code == 401
    blocked = client.post(
        "/signin", data={"name": "bob", "password": PASSWORDS["bob"], "csrf": token}
    )
    assert blocked.status_code == 429
    clock.now += 601
    allowed = client.post(
        "/signin", data={"name": "bob", "password": PASSWORDS["bob"], "csrf": token}
    )
    assert allowed.status_code == 303


def test_sign_in_form_needs_its_csrf_token(client: TestClient) -> None:
    client.get("/signin")
    response = client.post("/signin", data={"name": "alice", "password": PASSWORDS["alice"]})
    assert response.status_code == 403
    response = client.post(
        "/signin", data={"name": "alice", "password": PASSWORDS["alice"], "csrf": "forged"}
    )
    assert response.status_code == 403
    assert SESSION_COOKIE not in client.cookies


@pytest.mark.parametrize(
    ("token", "headers"),
    [
        (None, {}),
        ("forged-token", {}),
        ("GOOD", {"origin": "https://evil.example"}),
        ("GOOD", {"referer": "https://evil.example/page"}),
    ],
)
def test_actions_without_a_valid_csrf_token_are_rejected(
    client: TestClient,
    sql_log: SqlConversationLog,
    seeded: Seeded,
    token: str | None,
    headers: dict[str, str],
) -> None:
    good = sign_in(client, "alice")
    data = {"reason": "spam"}
    if token:
        data["csrf"] = good if token == "GOOD" else token
    before = len(sql_log.audit())
    response = client.post(f"/exchanges/{seeded.a_general[1]}/flag", data=data, headers=headers)
    assert response.status_code == 403
    assert "Form rejected" in response.text
    assert len(sql_log.audit()) == before
    assert sql_log.get_exchange(seeded.a_general[1]).flags == []
    # The same form with the session's token, from this site, works.
    ok = client.post(
        f"/exchanges/{seeded.a_general[1]}/flag",
        data={"reason": "spam", "csrf": good},
        headers={"origin": "http://testserver"},
    )
    assert ok.status_code == 303


def test_csrf_token_is_bound_to_the_session(client: TestClient, seeded: Seeded) -> None:
    alice_token = sign_in(client, "alice")
    client.cookies.clear()
    sign_in(client, "root")
    response = client.post(
        f"/exchanges/{seeded.a_general[1]}/flag", data={"reason": "x", "csrf": alice_token}
    )
    assert response.status_code == 403


def test_expired_and_idle_sessions_end(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    token = sign_in(client, "alice")
    assert client.get("/exchanges").status_code == 200
    with Session(sql_log.engine) as db:
        row = db.exec(select(ModeratorSession)).one()
        row.expires = utcnow() - timedelta(seconds=1)
        db.add(row)
        db.commit()
    response = client.get("/exchanges")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/signin")
    posted = client.post(
        f"/exchanges/{seeded.a_general[1]}/flag", data={"reason": "x", "csrf": token}
    )
    assert posted.status_code == 401
    with Session(sql_log.engine) as db:
        assert db.exec(select(ModeratorSession)).all() == []  # the dead session is deleted

    sign_in(client, "alice")
    with Session(sql_log.engine) as db:
        row = db.exec(select(ModeratorSession)).one()
        row.last_seen = utcnow() - timedelta(minutes=31)  # idle timeout is 30 minutes
        db.add(row)
        db.commit()
    assert client.get("/exchanges").status_code == 303


def test_sign_out_ends_the_session_on_the_server(client: TestClient) -> None:
    token = sign_in(client, "alice")
    cookie = _session_cookie(client)
    response = client.post("/signout", data={"csrf": token})
    assert response.status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)  # a stolen copy of the cookie is now useless
    assert client.get("/exchanges").status_code == 303


def test_password_change_signs_the_account_out(
    client: TestClient, accounts: ModeratorAccounts
) -> None:
    sign_in(client, "alice")
    accounts.set_password("alice", "a-brand-new-password", actor="ops")
    assert client.get("/exchanges").status_code == 303


def test_unknown_and_foreign_ids(client: TestClient, seeded: Seeded) -> None:
    token = sign_in(client, "alice")
    assert client.get("/exchanges/0123456789abcdef").status_code == 404
    assert client.get("/exchanges/bad id!").status_code == 400
    foreign = seeded.b_policy[0]
    page = client.get(f"/exchanges/{foreign}")
    assert page.status_code == 404
    assert "Baltic" not in page.text
    assert client.get(f"/exchanges/{foreign[:8]}").status_code == 404  # nor by prefix
    assert (
        client.post(f"/exchanges/{foreign}/flag", data={"reason": "x", "csrf": token}).status_code
        == 404
    )
    redact = client.post(
        f"/exchanges/{foreign}/redact", data={"reason": "x", "confirm": "yes", "csrf": token}
    )
    assert redact.status_code == 404
    assert client.post("/flags/999/resolve", data={"csrf": token}).status_code == 404
    ban = client.post(
        "/bans",
        data={"platform": "slack", "tenant": TENANT_B, "user_id": "U-dora", "csrf": token},
    )
    assert ban.status_code == 403
    assert client.get("/nowhere").status_code == 404


def test_a_foreign_flag_cannot_be_resolved(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    token = sign_in(client, "bob")
    response = client.post(f"/flags/{seeded.a_flag}/resolve", data={"csrf": token, "note": "x"})
    assert response.status_code == 404
    assert sql_log.flags("open")[0].id == seeded.a_flag


def test_an_admin_sees_every_tenant(client: TestClient, seeded: Seeded) -> None:
    sign_in(client, "root")
    assert client.get(f"/exchanges/{seeded.b_policy[0]}").status_code == 200
    assert client.get(f"/exchanges/{seeded.a_general[0]}").status_code == 200
    listing = client.get("/exchanges?page=1")
    everything = len(seeded.a_general) + len(seeded.a_thread) + len(seeded.b_policy) + 1
    assert f"{everything} matches" in listing.text


def test_every_action_writes_the_audit_trail(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    token = sign_in(client, "alice")
    target = seeded.a_general[1]

    def post(path: str, **data: str) -> None:
        response = client.post(path, data={**data, "csrf": token})
        assert response.status_code == 303, response.text

    post(f"/exchanges/{target}/flag", reason="tone")
    flag = next(f for f in sql_log.get_exchange(target).flags if f.reason == "tone")
    post(f"/flags/{flag.id}/resolve", note="fine on reflection")
    post(f"/flags/{flag.id}/note", text="second look agreed")
    post(f"/exchanges/{target}/redact", reason="personal data", confirm="yes")
    post("/bans", platform="discord", tenant=TENANT_A, user_id="u-boris", reason="spam")
    post("/bans/lift", platform="discord", tenant=TENANT_A, user_id="u-boris")

    entries = sql_log.audit(limit=6)
    assert [(e.action, e.actor, e.tenant) for e in reversed(entries)] == [
        ("flag", "alice", TENANT_A),
        ("resolve", "alice", TENANT_A),
        ("note", "alice", TENANT_A),
        ("redact", "alice", TENANT_A),
        ("ban", "alice", TENANT_A),
        ("unban", "alice", TENANT_A),
    ]
    assert entries[2].detail["reason"] == "personal data"
    stored = sql_log.get_exchange(target)
    assert (stored.input_text, stored.reply_text, stored.prompt) == ("[redacted]",) * 3
    assert stored.redacted_by == "alice"
    assert stored.flags[-1].status == "resolved"
    assert [n.text for n in stored.flags[-1].notes] == ["fine on reflection", "second look agreed"]
    assert all(report.ok for report in sql_log.verify())  # redaction keeps the chain valid

    page = client.get(f"/exchanges/{target}")
    assert "Redacted by <strong>alice</strong>" in page.text
    audit = client.get("/audit").text + client.get("/audit?page=2").text  # 5 a page
    for action in ("flag", "resolve", "note", "redact", "ban", "unban"):
        assert f">{action}</span>" in audit
    # Bob (the other tenant) sees none of alice's actions.
    client.cookies.clear()
    sign_in(client, "bob")
    assert ">redact</span>" not in client.get("/audit").text


def test_redaction_needs_confirmation(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    token = sign_in(client, "alice")
    response = client.post(
        f"/exchanges/{seeded.a_general[1]}/redact", data={"reason": "x", "csrf": token}
    )
    assert response.status_code == 400
    assert sql_log.get_exchange(seeded.a_general[1]).redacted_by is None


def test_filters_and_paging(client: TestClient, seeded: Seeded) -> None:
    sign_in(client, "alice")

    def ids(query: str) -> list[str]:
        html = client.get(f"/exchanges?{query}").text
        return re.findall(r'<tr class="row[^"]*" data-href="[^"]*" data-id="([0-9a-f]{32})"', html)

    first, second, third = ids("page=1"), ids("page=2"), ids("page=3")
    assert (len(first), len(second), len(third)) == (5, 5, 1)  # page size 5, 11 exchanges
    assert not set(first) & set(second)
    assert set(ids("refused=1")) == seeded.a_refused
    assert ids("ungrounded=1") == [seeded.a_ungrounded]
    assert ids("flagged=1") == [seeded.a_general[0]]
    assert sorted(ids("channel=history")) == sorted(seeded.a_thread)
    assert len(ids("user=u-carl")) == 3
    assert ids("platform=slack") == []
    assert ids(f"tenant={TENANT_B}") == []  # outside alice's scope: nothing, not an error
    assert ids("q=favourite+book") == [seeded.a_ungrounded]
    assert ids("since=2000-01-01&until=2000-01-02") == []
    assert client.get("/exchanges?since=yesterday").status_code == 400
    assert client.get("/exchanges?page=0").status_code == 400


def test_conversation_view_pages_through_a_long_conversation(
    sql_log: SqlConversationLog, accounts: ModeratorAccounts, seeded: Seeded
) -> None:
    app = create_app(sql_log, accounts, DashboardConfig(thread_page_size=3))
    with TestClient(app, follow_redirects=False) as client:
        sign_in(client, "alice")
        oldest = client.get(f"/exchanges/{seeded.a_general[0]}")
        shown = re.findall(r'<article class="exchange[^"]*" id="x-([0-9a-f]{32})"', oldest.text)
        # #general holds 8 exchanges: the oldest sits on the last page of 3 (newest first).
        assert shown == seeded.a_general[:2]
        assert 'class="exchange card focus flagged"' in oldest.text
        newest = client.get(f"/exchanges/{seeded.a_ungrounded}")
        shown = re.findall(r'<article class="exchange[^"]*" id="x-([0-9a-f]{32})"', newest.text)
        assert shown == [*seeded.a_general[-2:], seeded.a_ungrounded]


def test_exports_follow_the_filter_and_the_scope(client: TestClient, seeded: Seeded) -> None:
    sign_in(client, "alice")
    response = client.get("/export.csv?channel=history")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [row["id"] for row in rows] == seeded.a_thread  # oldest first
    assert all(row["scores"] and row["cited"] for row in rows)
    everything = client.get("/export.jsonl")
    records = [json.loads(line) for line in everything.text.splitlines()]
    assert len(records) == 11
    assert {r["tenant"] for r in records} == {TENANT_A}
    assert client.get("/export.xml").status_code == 404


def test_stats_page_draws_inline_svg(client: TestClient, sql_log: SqlConversationLog) -> None:
    sign_in(client, "alice")
    page = client.get("/stats?days=30")
    assert page.status_code == 200
    assert page.text.count('<svg class="chart"') == 4
    assert page.text.count('<rect class="bar"') == 30
    latency = sql_log.scoped([TENANT_A]).latency()
    assert latency and all(day.p50_ms <= day.p95_ms for day in latency)
    assert client.get("/stats?days=3").status_code == 400


def test_pages_load_nothing_from_elsewhere(client: TestClient, seeded: Seeded) -> None:
    sign_in(client, "alice")
    for path in ("/exchanges", f"/exchanges/{seeded.a_general[1]}", "/stats", "/audit", "/bans"):
        response = client.get(path)
        assert response.status_code == 200
        assert not re.search(r'(src|href)="(https?:)?//', response.text), path
        scripts = re.findall(r"<script[^>]*>", response.text)
        assert scripts == ['<script src="/static/keys.js" defer>'], path
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["x-frame-options"] == "DENY"
    assert client.get("/static/style.css").status_code == 200
