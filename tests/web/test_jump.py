"""Jump links: the stored permalink when it is the platform's, else the platform's own form."""

from __future__ import annotations

import pytest

from adapters.web.jump import jump_link


def test_slack_links_take_the_archives_form() -> None:
    assert (
        jump_link("slack", "T0123ABCD", "C0456", "", "1712345678.123456")
        == "https://t0123abcd.slack.com/archives/C0456/p1712345678123456"
    )
    assert jump_link("slack", "T1", "C2", "1712345000.000100", "1712345678.123456") == (
        "https://t1.slack.com/archives/C2/p1712345678123456?thread_ts=1712345000.000100&cid=C2"
    )


def test_discord_links_take_the_channels_form() -> None:
    assert (
        jump_link("discord", "111111111111111111", "222222222222222222", "", "333333333333333333")
        == "https://discord.com/channels/111111111111111111/222222222222222222/333333333333333333"
    )
    # In a thread the message lives in the thread's channel; in a DM the guild is @me.
    assert jump_link("discord", "111", "222", "444", "333") == (
        "https://discord.com/channels/111/444/333"
    )
    assert (
        jump_link("discord", "dm", "555", "", "333") == "https://discord.com/channels/@me/555/333"
    )


def test_a_stored_permalink_wins_when_it_points_at_the_platform() -> None:
    stored = "https://acme.slack.com/archives/C0456/p1712345678123456"
    assert jump_link("slack", "T1", "C0456", "", "1712345678.123456", stored) == stored
    assert jump_link("slack", "T1", "C0456", "", None, stored) == stored


@pytest.mark.parametrize(
    "permalink",
    [
        "javascript:alert(1)",
        "http://acme.slack.com/archives/C1/p1",  # not https
        "https://slack.com.evil.example/archives/C1/p1",
        "https://evilslack.com/archives/C1/p1",
    ],
)
def test_a_stored_link_elsewhere_is_ignored(permalink: str) -> None:
    assert jump_link("slack", "T1", "C1", "", None, permalink) is None
    assert jump_link("slack", "T1", "C1", "", "1.2", permalink) == (
        "https://t1.slack.com/archives/C1/p12"
    )


@pytest.mark.parametrize(
    ("platform", "tenant", "channel", "message"),
    [
        ("slack", "T1", "C1", "not-a-ts"),
        ("slack", "", "C1", "1.2"),
        ("discord", "111", "general", "333"),  # channel is not an id
        ("discord", "111", "222", "abc"),
        ("local", "local", "terminal", "1"),
        ("discord", "111", "222", None),
    ],
)
def test_no_link_without_usable_ids(
    platform: str, tenant: str, channel: str, message: str | None
) -> None:
    assert jump_link(platform, tenant, channel, "", message) is None
