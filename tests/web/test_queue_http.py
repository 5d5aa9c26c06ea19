"""The queue's HTTP side: bulk actions and their reasons, claims, filters that survive
navigation (and cannot be turned into an off-site redirect), saved filters, reply-kind and vote
filters, per-user pages, the time zone, unanswered questions and their exports, and stats whose
flag rate can no longer pass 100%."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient

from adapters.web.app import DashboardConfig, create_app
from bot.messages import ReplyKind
from bot.storage import ExchangeFilter, SqlConversationLog
from bot.storage.accounts import ModeratorAccounts
from bot.storage.insights import day_insights
from tests.web.browsing import record
from tests.web.conftest import TENANT_A, TENANT_B, Seeded, sign_in


def row_ids(html: str) -> list[str]:
    return re.findall(r'<tr class="row[^"]*" data-href="[^"]*" data-id="([0-9a-f]{32})"', html)


def test_bulk_resolve_needs_a_reason_and_keeps_the_list_filters(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    extra = [seeded.a_general[2], seeded.a_thread[0]]
    for exchange_id in extra:
        sql_log.open_flag(exchange_id, "discord:u-zed", "odd")
    ids = [seeded.a_general[0], *extra]
    back = "/queue?page=1"
    form = {"csrf": csrf, "ids": ids, "action": "resolve", "back": back}

    missing = client.post("/bulk", data={**form, "text": "  "})
    assert missing.status_code == 400
    assert "Give a reason" in missing.text
    assert client.post("/bulk", data={**form, "text": "x", "ids": []}).status_code == 400
    assert client.post("/bulk", data={**form, "text": "x", "action": "delete"}).status_code == 400
    too_many = client.post("/bulk", data={**form, "text": "x", "ids": ["abcdef"] * 501})
    assert too_many.status_code == 400 and "at most 500" in too_many.text
    assert client.post("/bulk", data={**form, "csrf": "forged", "text": "x"}).status_code == 403

    done = client.post("/bulk", data={**form, "text": "all three fine"})
    assert done.status_code == 303
    target = urlsplit(done.headers["location"])
    assert target.path == "/queue"
    assert parse_qs(target.query) == {"page": ["1"], "done": ["resolved"], "count": ["3"]}
    page = client.get(done.headers["location"])
    assert "Resolved 3 open flags." in page.text
    assert "No open flags in your tenants." in page.text
    assert [e.action for e in sql_log.audit(limit=3)] == ["resolve"] * 3
    assert all(
        f.resolved_by == "alice" and f.notes[-1].text == "all three fine"
        for x in ids
        for f in sql_log.get_exchange(x).flags
    )


def test_bulk_actions_stay_inside_the_moderators_tenants(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    foreign = client.post(
        "/bulk",
        data={"csrf": csrf, "ids": [seeded.b_policy[0]], "action": "flag", "text": "mine?"},
    )
    assert foreign.status_code == 404
    assert sql_log.get_exchange(seeded.b_policy[0]).flags == []


def test_bulk_flag_and_claim(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    ids = seeded.a_thread
    flagged = client.post(
        "/bulk",
        data={"csrf": csrf, "ids": ids, "action": "flag", "text": "check the quotes",
              "back": "https://evil.example/queue"},
    )  # fmt: skip
    assert flagged.status_code == 303
    assert flagged.headers["location"] == "/exchanges?done=flagged&count=3"
    claimed = client.post("/bulk", data={"csrf": csrf, "ids": ids, "action": "claim"})
    assert claimed.headers["location"] == "/exchanges?done=claimed&count=3"
    again = client.post("/bulk", data={"csrf": csrf, "ids": ids, "action": "claim"})
    assert again.headers["location"].endswith("count=0")  # already hers
    flags = [f for x in ids for f in sql_log.get_exchange(x).flags]
    assert {(f.reason, f.assignee) for f in flags} == {("check the quotes", "alice")}
    queue = client.get("/queue").text
    assert queue.count('class="badge claim"') == 3

    one = flags[0]
    released = client.post(f"/flags/{one.id}/release", data={"csrf": csrf, "back": "/queue"})
    assert released.status_code == 303
    assert "back=%2Fqueue" in released.headers["location"]
    assert sql_log.get_exchange(one.exchange_id).flags[0].assignee is None
    assert client.post(f"/flags/{one.id}/claim", data={"csrf": csrf}).status_code == 303
    assert [e.action for e in sql_log.audit(limit=2)] == ["claim", "release"]


def test_opening_a_row_keeps_the_way_back_and_nothing_else(
    client: TestClient, seeded: Seeded
) -> None:
    sign_in(client, "alice")
    listing = client.get("/exchanges?refused=1&q=the").text
    link = re.search(r'<a class="open" href="([^"]+)"', listing)
    assert link is not None
    href = link.group(1).replace("&amp;", "&")
    back = parse_qs(urlsplit(href).query)["back"]
    assert back == ["/exchanges?refused=1&q=the"]
    opened = client.get(href)
    assert 'href="/exchanges?refused=1&amp;q=the" data-back' in opened.text
    assert 'name="back" value="/exchanges?refused=1&amp;q=the"' in opened.text
    exchange_id = urlsplit(href).path.rsplit("/", 1)[1]
    for hostile in ("https://evil.example/", "//evil.example/x", "/signout", "javascript:x"):
        page = client.get(f"/exchanges/{exchange_id}", params={"back": hostile}).text
        assert 'href="/exchanges" data-back' in page, hostile


def test_reply_kind_and_vote_filters(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    sign_in(client, "alice")
    refused = set(row_ids(client.get("/exchanges?kind=out_of_scope").text))
    assert refused == seeded.a_refused
    assert (
        'class="badge kind-out_of_scope refused"' in client.get("/exchanges?kind=out_of_scope").text
    )
    bad = client.get("/exchanges?kind=rude")
    assert bad.status_code == 400 and "Unknown reply kind &#39;rude&#39;" in bad.text
    assert client.get("/exchanges?voted=sideways").status_code == 400

    assert sql_log.vote(seeded.a_general[1], "discord:u-1", -1)
    assert sql_log.vote(seeded.a_general[1], "discord:u-2", -1)
    assert sql_log.vote(seeded.a_general[3], "discord:u-1", 1)
    assert row_ids(client.get("/exchanges?voted=down").text) == [seeded.a_general[1]]
    assert row_ids(client.get("/exchanges?voted=up").text) == [seeded.a_general[3]]
    queue = client.get("/queue").text
    assert "2 voted down, not reviewed" not in queue  # two votes, one exchange
    assert "1 voted down, not reviewed" in queue
    assert f'data-id="{seeded.a_general[1]}"' in queue
    assert '<span class="down" title="down votes">−2</span>' in queue


def test_saved_filters_are_the_moderators_own(client: TestClient, seeded: Seeded) -> None:
    csrf = sign_in(client, "alice")
    saved = client.post(
        "/filters",
        data={"csrf": csrf, "name": "refusals", "query": "refused=1&page=3&evil=1&q=the"},
    )
    assert saved.status_code == 303
    assert saved.headers["location"] == "/exchanges?refused=1&q=the"
    listing = client.get("/exchanges").text
    assert '<a href="/exchanges?refused=1&amp;q=the">refusals</a>' in listing
    assert (
        client.post(
            "/filters", data={"csrf": csrf, "name": "bad", "query": "since=yesterday"}
        ).status_code
        == 400
    )
    client.post("/signout", data={"csrf": csrf})
    sign_in(client, "root")
    assert ">refusals</a>" not in client.get("/exchanges").text
    client.post("/signout", data={"csrf": csrf_of_page(client)})
    csrf = sign_in(client, "alice")
    assert (
        client.post("/filters/delete", data={"csrf": csrf, "name": "refusals"}).status_code == 303
    )
    assert ">refusals</a>" not in client.get("/exchanges").text
    assert (
        client.post("/filters/delete", data={"csrf": csrf, "name": "refusals"}).status_code == 404
    )


def csrf_of_page(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/exchanges").text)
    assert found
    return found.group(1)


def test_a_users_page_shows_their_exchanges_and_ban(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    page = client.get(f"/users/discord/{TENANT_A}/u-anna")
    assert page.status_code == 200
    assert "u-anna-name" in page.text and "not banned" in page.text
    assert f"/users/discord/{TENANT_A}/u-anna" in client.get("/exchanges").text  # every row links
    expected = [*seeded.a_general[::2], seeded.a_ungrounded]
    assert set(row_ids(page.text)) <= set(expected)
    banned = client.post(
        "/bans",
        data={"csrf": csrf, "platform": "discord", "tenant": TENANT_A, "user_id": "u-anna",
              "reason": "spam", "back": f"/users/discord/{TENANT_A}/u-anna"},
    )  # fmt: skip
    assert banned.headers["location"] == f"/users/discord/{TENANT_A}/u-anna"
    assert "spam" in client.get(banned.headers["location"]).text
    assert client.get(f"/users/slack/{TENANT_B}/U-dora").status_code == 404
    assert client.get("/users/discord/guild-a/nobody").status_code == 404


def test_times_show_in_the_chosen_zone_with_utc_on_hover(
    client: TestClient, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    assert client.post("/prefs", data={"csrf": csrf, "zone": "Mars/Olympus"}).status_code == 400
    saved = client.post("/prefs", data={"csrf": csrf, "zone": "Asia/Tokyo", "back": "/audit"})
    assert saved.status_code == 303 and saved.headers["location"] == "/audit"
    page = client.get(f"/exchanges/{seeded.a_general[1]}").text
    stamp = re.search(r'<time datetime="([^"]+)" title="([^"]+) UTC">([^<]+) JST</time>', page)
    assert stamp, "no full time in Tokyo time"
    utc, local = stamp.group(2), stamp.group(3)
    assert int(local[11:13]) == (int(utc[11:13]) + 9) % 24
    assert ">Asia/Tokyo</a>" in page


def fake_embed(texts: Sequence[str]) -> np.ndarray:
    """Questions about pizza on one axis, football on another, everything else on a third."""
    rows = np.array(
        [[float("pizza" in t), float("football" in t), float("pizza" not in t and "football" not in t)]
         for t in texts], dtype=np.float32,
    )  # fmt: skip
    normalised: np.ndarray = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return normalised


@pytest.fixture
def grouped(sql_log: SqlConversationLog, accounts: ModeratorAccounts) -> Iterator[TestClient]:
    for text in ("Is pizza good?", "=HYPERLINK(pizza)", "Best football club?"):
        record(sql_log, text, "Not in my essay.", ReplyKind.OUT_OF_SCOPE)
    record(sql_log, "What did Kozyrev eat?", "Closest…", ReplyKind.NOT_DIRECT)
    record(sql_log, "Pizza, again", "…", ReplyKind.ANSWER)  # answered: not listed
    app = create_app(sql_log, accounts, DashboardConfig(), embed=fake_embed)
    with TestClient(app, follow_redirects=False) as client:
        yield client


def test_unanswered_questions_are_grouped_and_exported(grouped: TestClient) -> None:
    sign_in(grouped, "alice")
    page = grouped.get("/unanswered")
    assert page.status_code == 200
    counts = [
        int(n)
        for n in re.findall(r'<span class="count" title="questions in this group">(\d+)', page.text)
    ]
    # pizza (with the seeded "best pizza topping"): 3; football (+ the seeded cup question): 2;
    # the rest: Kozyrev's food.
    assert counts == [3, 2, 1]
    assert "Pizza, again" not in page.text

    exported = grouped.get("/unanswered.csv?days=7")
    assert exported.status_code == 200
    assert 'filename="unanswered-7d-' in exported.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["group"], r["group_size"]) for r in rows][:3] == [("1", "3")] * 3
    assert {r["question"] for r in rows if r["group"] == "1"} == {
        "Is pizza good?", "'=HYPERLINK(pizza)", "What is the best pizza topping?",
    }  # fmt: skip
    assert {r["tenant"] for r in rows} == {TENANT_A}
    groups = json.loads(grouped.get("/unanswered.json").text)
    assert [g["count"] for g in groups] == [3, 2, 1]
    assert groups[2]["kinds"] == {"not_direct": 1}
    assert grouped.get("/unanswered.xlsx").status_code == 404
    assert grouped.get("/unanswered?days=2").status_code == 400


def test_the_flag_rate_counts_flagged_exchanges_by_their_own_day(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    old = seeded.a_general[2]
    for reporter in ("discord:a", "discord:b", "discord:c"):
        sql_log.open_flag(old, reporter, "again")
    days = day_insights(sql_log.scoped([TENANT_A]))
    created = sql_log.get_exchange(old).created.date().isoformat()
    assert days[created].flagged == 1
    assert all(d.flagged <= d.exchanges for d in days.values())
    assert (
        sum(d.exchanges for d in days.values()) == len(seeded.a_general) + len(seeded.a_thread) + 1
    )
    assert sum(d.exchanges for d in day_insights(sql_log.scoped([TENANT_B])).values()) == len(
        seeded.b_policy
    )
    sign_in(client, "alice")
    page = client.get("/stats?days=30").text
    rate = re.search(r"flagged <small>\(([\d.]+)% of exchanges\)", page)
    assert rate and float(rate.group(1)) <= 100.0


def test_lists_sort_and_keep_the_sort(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    sign_in(client, "alice")
    ordered = sql_log.list_exchanges(ExchangeFilter(tenant=TENANT_A, order="latency", limit=5))
    assert row_ids(client.get("/exchanges?sort=latency").text) == [x.id for x in ordered.items]
    oldest = row_ids(client.get("/exchanges?sort=old").text)
    assert oldest[0] == seeded.a_general[0]
    page = client.get("/exchanges?sort=votes&refused=1").text
    assert '<option value="votes" selected>most voted down</option>' in page
    assert "back=%2Fexchanges%3Fsort%3Dvotes%26refused%3D1" in page  # rows return to this order
    bad = client.get("/queue?sort=random")
    assert bad.status_code == 400 and "Sort by one of: new, old, latency, votes, score." in bad.text
