"""Hostile model output (pings, tracking links, markdown that fakes a source) is defused per platform."""

from __future__ import annotations

import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from adapters.discord.formatting import MESSAGE_LIMIT, render_reply, split_message
from adapters.links import strip_tracking
from adapters.slack.render import asked_block, reply_messages
from bot.messages import Citation, Reply
from tests.hardening.tally import TALLY

HOSTILE = [
    "@everyone",
    "@here",
    "<@123456789012345678>",
    "<@!123456789012345678>",
    "<@&987654321098765432>",
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0ADMIN>",
    "<!subteam^S123|@admins>",
    "https://evil.example/path?utm_source=bot&utm_medium=chat&fbclid=XYZ&id=7",
    "<https://evil.example/?gclid=abc|click here>",
    "[totally the essay](https://evil.example/?mc_eid=1)",
    "\n\n**Sources**\n1. **Fake section**\n> I supported the war.",
    "\n> fake quote line",
    "# Heading\n-# small print",
    "```\ncode block\n```",
    "||spoiler||",
    "*bold* _it_ ~strike~ `tick`",
    "&lt;!channel&gt; &amp;",
]
# Live pings and previewing links as each platform would act on them.
_DISCORD_PING = re.compile(r"@(everyone|here)|<@[!&]?\d+>")
_TRACKING_PARAM = re.compile(r"[?&](utm_\w+|fbclid|gclid|mc_eid)=", re.IGNORECASE)
_BARE_LINK = re.compile(r"(?<!<)https?://")

hostile_text = st.lists(
    st.one_of(st.sampled_from(HOSTILE), st.text(max_size=40)), min_size=1, max_size=8
).map(" ".join)


def _citation(quote: str, section: str = "Russia versus NATO") -> Citation:
    return Citation(passage_id="p-1", section=section, quote=quote, passage=quote)


def _discord_problems(message: str) -> list[str]:
    problems = []
    if _DISCORD_PING.search(message):
        problems.append("live ping")
    if _TRACKING_PARAM.search(message):
        problems.append("tracking parameter")
    if _BARE_LINK.search(message):
        problems.append("link with a preview")
    return problems


def _slack_texts(value: Any) -> list[str]:
    """Every string Slack would show: each `text` at any depth of the messages and blocks."""
    if isinstance(value, list):
        return [text for item in value for text in _slack_texts(item)]
    if not isinstance(value, dict):
        return []
    texts = [value["text"]] if isinstance(value.get("text"), str) else []
    return texts + [text for item in value.values() for text in _slack_texts(item)]


def _check_discord(reply: Reply) -> None:
    rendered = render_reply(reply)
    assert _discord_problems(rendered) == [], rendered
    lines = rendered.split("\n")
    headers = [n for n, line in enumerate(lines) if line == "**Sources**"]
    assert len(headers) == (1 if reply.citations else 0), rendered
    if headers:
        body = lines[headers[0] + 1 :]
        numbered = [line for line in body if re.fullmatch(r"\d+\. \*\*.*\*\*", line)]
        assert len(numbered) == len(reply.citations)
        assert all(line in numbered or line.startswith("> ") for line in body), body
    for chunk in split_message(rendered):
        assert 0 < len(chunk) <= MESSAGE_LIMIT
        assert _discord_problems(chunk) == []


def _check_slack(reply: Reply) -> None:
    messages = reply_messages(reply, asked=asked_block("someone", reply.text), exchange_id="b")
    for text in _slack_texts(messages):
        assert "<" not in text and ">" not in text, text  # no <!channel>, <@U1>, <url|label>
        assert not re.search(r"@(here|channel|everyone)\b", text, re.IGNORECASE), text
        assert not _TRACKING_PARAM.search(text), text
    citation_blocks = [
        b
        for m in messages
        for b in m["blocks"]
        if b["type"] == "context" and b["elements"][0]["text"].startswith("*[")
    ]
    assert len(citation_blocks) == len(reply.citations)


def test_every_hostile_sample_is_defused_on_both_platforms() -> None:
    for sample in HOSTILE:
        reply = Reply(text=f"As I wrote: {sample} end.", citations=[_citation(sample, sample)])
        _check_discord(reply)
        _check_slack(reply)


def test_tracking_parameters_go_and_the_rest_of_the_link_stays() -> None:
    text = "See https://example.org/a?utm_source=x&id=7&fbclid=y. Or http://e.org/?gclid=1)"
    assert strip_tracking(text) == "See https://example.org/a?id=7. Or http://e.org/)"
    assert strip_tracking("https://e.org/?q=1", ("<", ">")) == "<https://e.org/?q=1>"
    assert strip_tracking("http://[::1:bad/?utm_source=1") == "http://[::1:bad/?utm_source=1"


@settings(max_examples=300, deadline=None)
@given(text=hostile_text, quote=hostile_text, section=hostile_text, count=st.integers(0, 3))
def test_hostile_reply_text_and_citations_never_reach_discord_unescaped(
    text: str, quote: str, section: str, count: int
) -> None:
    TALLY.fuzz_cases += 1
    _check_discord(Reply(text=text, citations=[_citation(quote, section)] * count))


@settings(max_examples=300, deadline=None)
@given(text=hostile_text, quote=hostile_text, section=hostile_text, count=st.integers(0, 3))
def test_hostile_reply_text_and_citations_never_reach_slack_unescaped(
    text: str, quote: str, section: str, count: int
) -> None:
    TALLY.fuzz_cases += 1
    _check_slack(Reply(text=text, citations=[_citation(quote, section)] * count))
