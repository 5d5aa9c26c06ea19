"""End-to-end: Debian's Chromium (headless, through Playwright) against the dashboard served by
uvicorn on 127.0.0.1 over a seeded log. Screenshots go to test-artifacts/."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright

from adapters.web.app import DashboardConfig, create_app
from bot.settings import PROJECT_ROOT
from bot.storage import SqlConversationLog
from bot.storage.accounts import ModeratorAccounts
from tests.web.conftest import IN_SCOPE, PASSWORDS, TENANT_A, Seeded

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium and chromium-driver "
            "(run .ci/services); browser tests never download a browser."
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=ARGS, headless=True
        )
        yield launched
        launched.close()


@pytest.fixture
def server(sql_log: SqlConversationLog, accounts: ModeratorAccounts) -> Iterator[str]:
    """The dashboard on a free loopback port, served by uvicorn from a thread."""
    app = create_app(sql_log, accounts, DashboardConfig(page_size=8))
    served = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not served.started:
        assert thread.is_alive() and time.monotonic() < deadline, "dashboard did not start"
        time.sleep(0.05)
    port = served.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    served.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    opened = context.new_page()
    external: list[str] = []
    opened.on(
        "request",
        lambda request: (
            external.append(request.url) if not request.url.startswith("http://127.0.0.1") else None
        ),
    )
    yield opened
    context.close()
    assert external == [], f"the dashboard fetched something off-host: {external}"


def sign_in(page: Page, base: str, name: str) -> None:
    page.goto(f"{base}/exchanges")
    expect(page).to_have_url(f"{base}/signin?next=%2Fexchanges")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Password").fill(PASSWORDS[name])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{base}/exchanges")
    expect(page.locator("h1")).to_contain_text("Exchanges")


def test_sign_in_filter_and_open_a_conversation(
    page: Page, server: str, seeded: Seeded, sql_log: SqlConversationLog
) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    sign_in(page, server, "alice")
    rows = page.locator(".row")
    expect(rows).to_have_count(8)  # one page; guild-a has 11 exchanges
    expect(page.locator("h1 small")).to_have_text("11 matches")
    expect(page.get_by_text("Baltic")).to_have_count(0)  # team-b's, never shown to alice
    page.screenshot(path=str(ARTIFACTS / "dashboard-list.png"), full_page=True)

    page.get_by_role("link", name="Older →").click()
    expect(rows).to_have_count(3)

    page.goto(f"{server}/exchanges")
    page.get_by_label("refused").check()
    page.get_by_role("button", name="Filter").click()
    refused = len(seeded.a_refused)
    assert refused >= 2
    expect(page.locator("h1 small")).to_have_text(f"{refused} matches")
    expect(rows.locator(".badge.refused")).to_have_count(refused)
    assert "refused=1" in page.url

    page.goto(f"{server}/exchanges")
    page.get_by_label("Search").fill("yeltsin THINK about")
    page.get_by_text("More filters").click()
    page.get_by_label("Channel").fill("general")
    page.get_by_role("button", name="Filter").click()
    expect(page.locator("h1 small")).to_have_text("1 match")
    rows.first.locator("a.open").click()

    focus = page.locator("article.focus")
    expect(focus).to_contain_text("What did Yeltsin think about NATO expansion?")
    expect(focus.locator("h3", has_text="Cited passages")).to_be_visible()
    stored = sql_log.get_exchange(seeded.a_general[1])
    first = stored.citations[0]
    assert first.score is not None
    cited = focus.locator("table").first.locator("tbody tr").first
    expect(cited).to_contain_text(first.passage_id)
    expect(cited.locator("td.num")).to_have_text(f"{first.score:.3f}")
    expect(focus).to_contain_text(stored.model_id)
    expect(focus).to_contain_text(stored.prompt_version)
    expect(focus.locator("dt", has_text="Prompt version")).to_be_visible()
    expect(focus.locator(".verdicts li").first).to_be_visible()
    expect(page.locator("article.exchange")).to_have_count(len(seeded.a_general) + 1)
    focus.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "dashboard-conversation.png"))
    page.screenshot(path=str(ARTIFACTS / "dashboard-conversation-full.png"), full_page=True)

    page.set_viewport_size({"width": 390, "height": 844})
    focus.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "dashboard-conversation-phone.png"))
    page.goto(f"{server}/exchanges")
    page.screenshot(path=str(ARTIFACTS / "dashboard-list-phone.png"), full_page=True)
    page.goto(f"{server}/stats")
    expect(page.locator("svg.chart")).to_have_count(4)
    page.screenshot(path=str(ARTIFACTS / "dashboard-stats-phone.png"), full_page=True)


def test_flag_resolve_redact_and_ban(page: Page, server: str, seeded: Seeded) -> None:
    sign_in(page, server, "alice")
    target = seeded.a_thread[1]
    page.goto(f"{server}/exchanges/{target}")
    card = page.locator(f"#x-{target}")

    card.locator("summary", has_text="Flag").click()
    card.locator("form[action$='/flag']").get_by_label("Reason").fill("quotes the essay, cut")
    card.get_by_role("button", name="Open flag").click()
    expect(page.locator(".notice")).to_have_text("Flag opened.")
    expect(card.locator(".badge.flag")).to_have_text("1 open flag")
    expect(card.locator(".flag-box")).to_contain_text("reported by alice")

    card.get_by_label("Resolution note").fill("checked against the essay: fine")
    card.get_by_role("button", name="Resolve").click()
    expect(page.locator(".notice")).to_have_text("Flag resolved.")
    expect(card.locator(".flag-box.resolved")).to_contain_text("resolved by alice")
    expect(card.locator(".note")).to_contain_text("checked against the essay: fine")

    original = IN_SCOPE[1]
    expect(card.locator(".turn.user")).to_contain_text(original)
    card.locator("summary", has_text="Redact").click()
    redact = card.locator("form[action$='/redact']")
    redact.get_by_label("Reason").fill("personal data")
    redact.get_by_role("button", name="Redact text").click()
    assert redact.get_by_role("checkbox").evaluate("box => !box.validity.valid")  # not sent
    expect(page.locator(".notice")).to_have_text("Flag resolved.")
    redact.get_by_role("checkbox").check()
    redact.get_by_role("button", name="Redact text").click()
    expect(page.locator(".notice")).to_have_text("Exchange redacted.")
    expect(card.locator(".redacted")).to_contain_text("Redacted by alice")
    expect(card.locator(".turn.user")).to_contain_text("[redacted]")
    expect(card).not_to_contain_text(original)

    card.locator("summary", has_text="Ban u-carl-name").click()
    card.get_by_role("button", name="Ban from the persona").click()
    expect(page.locator(".notice")).to_have_text("User banned.")
    expect(card.locator(".badge", has_text="user banned")).to_be_visible()
    page.goto(f"{server}/bans")
    expect(page.locator("main tbody tr")).to_have_count(1)
    page.get_by_role("button", name="Lift").click()
    expect(page.get_by_text("Nobody is banned.")).to_be_visible()

    page.goto(f"{server}/audit")
    actions = page.locator("main tbody tr td:nth-child(3)").all_inner_texts()
    assert actions[:5] == ["unban", "ban", "redact", "resolve", "flag"]
    expect(page.locator("main tbody tr").first).to_contain_text("alice")


def test_export_the_current_filter(page: Page, server: str, seeded: Seeded) -> None:
    sign_in(page, server, "alice")
    page.get_by_label("refused").check()
    page.get_by_role("button", name="Filter").click()
    with page.expect_download() as csv_download:
        page.get_by_role("link", name="Export CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(csv_download.value.path()).read_text("utf-8"))))
    assert {row["id"] for row in rows} == seeded.a_refused
    assert {row["tenant"] for row in rows} == {TENANT_A}
    with page.expect_download() as jsonl_download:
        page.get_by_role("link", name="Export JSONL").click()
    assert csv_download.value.suggested_filename.endswith(".csv")
    lines = Path(jsonl_download.value.path()).read_text("utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["id"] for r in records] == [row["id"] for row in rows]
    assert all(r["citations"] == [] and r["refused"] for r in records)


def test_a_moderator_cannot_open_another_tenants_conversation(
    page: Page, server: str, seeded: Seeded
) -> None:
    sign_in(page, server, "alice")
    response = page.goto(f"{server}/exchanges/{seeded.b_policy[0]}")
    assert response is not None and response.status == 404
    expect(page.locator("h1")).to_have_text("Not found")
    expect(page.get_by_text("Baltic")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{server}/signin")
    sign_in(page, server, "bob")
    response = page.goto(f"{server}/exchanges/{seeded.b_policy[0]}")
    assert response is not None and response.status == 200
    expect(page.locator("article.focus")).to_contain_text("Baltic")
