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


@pytest.mark.parametrize("name", ["manifest.yaml", "manifest.http.yaml"])
def test_manifest_matches_the_app(name: str) -> None:
    manifest = _load(name)
    features = manifest["features"]
    settings = manifest["settings"]

    assert [c["command"] for c in features["slash_commands"]] == [SlackSettings().command]
    assert [s["callback_id"] for s in features["shortcuts"]] == [REPORT_CALLBACK]
    assert features["shortcuts"][0]["type"] == "message"
    assert features["app_home"]["messages_tab_enabled"] is True
    assert set(settings["event_subscriptions"]["bot_events"]) == {
        "app_mention",
        "message.channels",
        "message.groups",
        "message.im",
    }
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == {
        "app_mentions:read",
        "channels:history",
        "chat:write",
        "commands",
        "groups:history",
        "im:history",
        "users:read",
    }
    assert settings["interactivity"]["is_enabled"] is True
    assert len(manifest["display_information"]["long_description"]) >= 175


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
