"""The queue's last pieces over HTTP: sorting by retrieval score, assigning a flag to another
moderator, marking voted-down replies reviewed, and a user's own votes and reports."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from bot.storage import ExchangeFilter, SqlConversationLog
from tests.web.conftest import TENANT_A, Seeded, sign_in
from tests.web.test_queue_http import row_ids


def test_lists_sort_by_score_lowest_first_with_nothing_retrieved_last(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    sign_in(client, "alice")
    every = sql_log.list_exchanges(ExchangeFilter(tenant=TENANT_A, limit=1000)).items
    scored = sorted((x for x in every if x.top_score is not None), key=lambda x: x.top_score or 0)
    assert scored, "the seeded core retrieved nothing"
    page = client.get("/exchanges?sort=score").text
    assert '<option value="score" selected>lowest score first</option>' in page
    assert row_ids(page)[0] == scored[0].id
    assert f'<td class="num score">{scored[0].top_score:.2f}</td>' in page
    unscored = [x.id for x in every if x.top_score is None]
    assert seeded.a_ungrounded in unscored  # logged without retrieval
    last_page = -(-len(every) // 5)  # the test config's page size
    assert row_ids(client.get(f"/exchanges?sort=score&page={last_page}").text)[-1] in unscored
    bad = client.get("/exchanges?sort=best")
    assert bad.status_code == 400 and "score" in bad.text


def test_assigning_a_flag_to_a_moderator_of_its_tenant(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    opened = client.get(f"/exchanges/{seeded.a_general[0]}").text
    choices = re.search(r'<select name="assignee" required>(.*?)</select>', opened)
    assert choices is not None
    assert re.findall(r"<option[^>]*>([^<]+)</option>", choices.group(1)) == ["root"]  # not bob
    url = f"/flags/{seeded.a_flag}/assign"
    no_reason = client.post(url, data={"csrf": csrf, "assignee": "root", "reason": " "})
    assert no_reason.status_code == 400 and "Say why you assign the flag" in no_reason.text
    outsider = client.post(url, data={"csrf": csrf, "assignee": "bob", "reason": "help"})
    assert outsider.status_code == 400
    assert "&#39;bob&#39; does not moderate tenant &#39;guild-a&#39;" in outsider.text
    assert (
        client.post(url, data={"csrf": "x", "assignee": "root", "reason": "y"}).status_code == 403
    )

    done = client.post(
        url, data={"csrf": csrf, "assignee": "root", "reason": "needs an admin", "back": "/queue"}
    )
    assert done.status_code == 303 and "done=assigned" in done.headers["location"]
    assert "Flag assigned." in client.get(done.headers["location"]).text
    flag = sql_log.get_exchange(seeded.a_general[0]).flags[0]
    assert (flag.assignee, flag.assigned_by) == ("root", "alice")
    entry = sql_log.audit(limit=1)[0]
    assert (entry.actor, entry.action, entry.detail["reason"]) == (
        "alice",
        "assign",
        "needs an admin",
    )
    queue = client.get("/queue").text
    assert '<span class="badge claim" title="assigned to root by alice">→ root</span>' in queue
    audit = client.get("/audit").text
    x = seeded.a_general[0]
    assert (
        f'>assign</span></td>\n    <td>{TENANT_A}</td>\n    <td><a href="/exchanges/{x}#x-{x}">'
        in (audit)
    )

    csrf_bob = sign_in(client, "bob")
    assert (
        client.post(url, data={"csrf": csrf_bob, "assignee": "bob", "reason": "x"}).status_code
        == 404
    )


def test_a_reviewed_down_vote_leaves_the_queue(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "alice")
    down, also = seeded.a_general[1], seeded.a_general[3]
    assert sql_log.vote(down, "discord:u-1", -1)
    assert sql_log.vote(also, "discord:u-1", -1)
    queue = client.get("/queue").text
    assert "2 voted down, not reviewed" in queue
    assert (
        '<span class="downs" title="replies voted down, not reviewed or flagged">2 down</span>'
        in (queue)
    )

    review = f"/exchanges/{down}/review"
    assert client.post(review, data={"csrf": csrf, "reason": ""}).status_code == 400
    done = client.post(review, data={"csrf": csrf, "reason": "accurate", "back": "/queue"})
    assert done.status_code == 303
    opened = client.get(done.headers["location"]).text
    assert "Down votes marked reviewed" in opened
    assert "Reviewed by <strong>alice</strong>" in opened
    queue = client.get("/queue").text
    assert "1 voted down, not reviewed" in queue
    assert f'data-id="{down}"' not in queue
    assert row_ids(client.get("/exchanges?voted=unreviewed").text) == [also]
    assert (
        'title="down votes reviewed by alice: accurate">reviewed</span>'
        in client.get("/exchanges?voted=down").text
    )

    bulk = client.post(
        "/bulk",
        data={"csrf": csrf, "ids": [also, down], "action": "review", "text": "both fine",
              "back": "/queue"},
    )  # fmt: skip
    assert bulk.headers["location"] == "/queue?done=reviewed&count=1"  # `down` was done already
    page = client.get(bulk.headers["location"]).text
    assert "Marked the down votes of 1 reply reviewed." in page
    assert "No reply voted down awaits review." in page
    assert 'class="downs"' not in page
    assert [e.action for e in sql_log.audit(limit=2)] == ["review", "review"]

    assert sql_log.vote(down, "discord:u-2", -1)  # voted down again: back in the queue
    assert f'data-id="{down}"' in client.get("/queue").text
    assert client.get("/exchanges?voted=sideways").status_code == 400


def test_a_users_page_lists_their_votes_and_reports(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    sign_in(client, "alice")
    assert sql_log.vote(seeded.a_general[1], "discord:u-anna", -1)
    assert sql_log.vote(seeded.a_thread[0], "discord:u-anna", 1)
    sql_log.open_flag(seeded.a_thread[1], "discord:u-anna", "misquotes Yeltsin")
    assert sql_log.vote(seeded.b_policy[0], "slack:team-b:u-anna", 1)  # another tenant
    page = client.get(f"/users/discord/{TENANT_A}/u-anna").text
    assert "<strong>2</strong> votes given" in page
    assert "<strong>1</strong> report made" in page
    votes = re.search(r'<ul class="plain votes">(.*?)</ul>', page, re.S)
    assert votes is not None
    assert votes.group(1).count("<li>") == 2
    assert 'title="voted down">−1</span>' in votes.group(1)
    assert 'title="voted up">+1</span>' in votes.group(1)
    assert f"/exchanges/{seeded.a_general[1]}?back=%2Fusers%2Fdiscord%2F{TENANT_A}%2Fu-anna" in (
        votes.group(1)
    )
    assert "misquotes Yeltsin" in page

    # Someone who only voted still has a page.
    assert sql_log.vote(seeded.a_general[2], "discord:u-quiet", 1)
    quiet = client.get(f"/users/discord/{TENANT_A}/u-quiet")
    assert quiet.status_code == 200
    assert "They have not asked the persona anything here." in quiet.text
    assert "<strong>1</strong> vote given" in quiet.text


def test_bulk_assign_checks_every_tenant_before_assigning(
    client: TestClient, sql_log: SqlConversationLog, seeded: Seeded
) -> None:
    csrf = sign_in(client, "root")
    sql_log.open_flag(seeded.a_thread[0], "discord:u-zed", "odd")
    sql_log.open_flag(seeded.b_policy[0], "slack:team-b:U-x", "odd")
    queue = client.get("/queue").text
    options = re.search(r'<select name="assignee"[^>]*>(.*?)</select>', queue)
    assert options is not None and "<option>alice</option><option>bob</option>" in options.group(1)
    form = {"csrf": csrf, "action": "assign", "text": "yours", "back": "/queue"}
    mixed = [seeded.a_general[0], seeded.a_thread[0], seeded.b_policy[0]]
    refused = client.post("/bulk", data={**form, "ids": mixed, "assignee": "alice"})
    assert refused.status_code == 400
    assert "&#39;alice&#39; does not moderate tenant &#39;team-b&#39;" in refused.text
    assert all(f.assignee is None for x in mixed for f in sql_log.get_exchange(x).flags)
    assert client.post("/bulk", data={**form, "ids": mixed[:2]}).status_code == 400  # no one

    done = client.post("/bulk", data={**form, "ids": mixed[:2], "assignee": "alice"})
    assert done.headers["location"] == "/queue?done=assigned&count=2"
    assert "Assigned 2 open flags." in client.get(done.headers["location"]).text
    flags = [f for x in mixed[:2] for f in sql_log.get_exchange(x).flags]
    assert {(f.assignee, f.assigned_by) for f in flags} == {("alice", "root")}
    assert [e.action for e in sql_log.audit(limit=2)] == ["assign", "assign"]

    sign_in(client, "alice")
    options = re.search(r'<select name="assignee"[^>]*>(.*?)</select>', client.get("/queue").text)
    assert options is not None
    assert re.findall(r"<option>([^<]+)</option>", options.group(1)) == ["root"]  # not bob
