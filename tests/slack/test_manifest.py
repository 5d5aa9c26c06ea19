"""The shipped manifests must create an app that sends exactly what the Bolt app listens for."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from adapters.slack.app import REPORT_CALLBACK
from adapters.slack.settings import SlackSettings

MANIFESTS = Path(__file__).resolve().parents[2] / "adapters" / "slack"


def _load(name: str) -> dict[str, Any]:
    loaded = yaml.safe_load((MANIFESTS / name).read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


FULL_EVENTS = {
    "app_home_opened",
    "app_mention",
    "message.channels",
    "message.groups",
    "message.im",
    "message.mpim",
}
FULL_SCOPES = {
    "app_mentions:read",
    "assistant:write",
    "channels:history",
    "chat:write",
    "commands",
    "groups:history",
    "im:history",
    "mpim:history",
    "users:read",
}
# Least data: only what is addressed to the persona; no history of any channel it sits in.
LEAST_EVENTS = {"app_home_opened", "app_mention", "message.im"}
LEAST_SCOPES = {"app_mentions:read", "assistant:write", "chat:write", "commands", "im:history"}


@pytest.mark.parametrize(
    ("name", "events", "scopes"),
    [
        ("manifest.yaml", FULL_EVENTS, FULL_SCOPES),
        ("manifest.http.yaml", FULL_EVENTS, FULL_SCOPES),
        ("manifest.least-data.yaml", LEAST_EVENTS, LEAST_SCOPES),
    ],
)
def test_manifest_matches_the_app(name: str, events: set[str], scopes: set[str]) -> None:
    manifest = _load(name)
    features = manifest["features"]
    settings = manifest["settings"]

    assert [c["command"] for c in features["slash_commands"]] == [SlackSettings().command]
    assert features["slash_commands"][0]["should_escape"] is True  # mentions and links parsed
    assert [s["callback_id"] for s in features["shortcuts"]] == [REPORT_CALLBACK]
    assert features["shortcuts"][0]["type"] == "message"
    assert features["app_home"]["messages_tab_enabled"] is True
    # The agent messaging experience (agent_view), not the legacy assistant_view.
    assert "assistant_view" not in features
    assert "Andrei Kozyrev" in features["agent_view"]["agent_description"]
    assert set(settings["event_subscriptions"]["bot_events"]) == events
    assert "assistant_thread_started" not in events
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == scopes
    assert settings["interactivity"]["is_enabled"] is True
    assert len(manifest["display_information"]["long_description"]) >= 175


def test_least_data_manifest_reads_no_channel_history() -> None:
    scopes = set(_load("manifest.least-data.yaml")["oauth_config"]["scopes"]["bot"])
    assert not {s for s in scopes if s.endswith(":history")} - {"im:history"}
    assert "users:read" not in scopes


def test_socket_manifest_needs_no_urls_and_http_manifest_has_them_all() -> None:
    socket, http = _load("manifest.yaml"), _load("manifest.http.yaml")
    assert socket["settings"]["socket_mode_enabled"] is True
    assert "url" not in socket["features"]["slash_commands"][0]
    assert http["settings"]["socket_mode_enabled"] is False
    urls = {
        http["features"]["slash_commands"][0]["url"],
        http["settings"]["event_subscriptions"]["request_url"],
        http["settings"]["interactivity"]["request_url"],
    }
    assert urls == {"https://slack.example.org" + SlackSettings().path}
