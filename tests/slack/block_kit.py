"""Checks a message against the Block Kit limits Slack enforces (it rejects, not truncates)."""

from __future__ import annotations

import json
from typing import Any

MAX_BLOCKS = 50
MAX_SECTION_TEXT = 3000
MAX_CONTEXT_ELEMENTS = 10
MAX_TEXT_OBJECT = 3000
MAX_BLOCK_ID = 255
MAX_CONTEXT_ACTIONS = 5
MAX_BUTTON_TEXT = 75
MAX_BUTTON_VALUE = 2000


def assert_valid_message(message: dict[str, Any]) -> None:
    blocks = message.get("blocks")
    if isinstance(blocks, str):
        blocks = json.loads(blocks)
    assert isinstance(blocks, list) and 0 < len(blocks) <= MAX_BLOCKS, "1..50 blocks"
    assert isinstance(message.get("text"), str) and message["text"].strip(), "fallback text"
    for block in blocks:
        assert len(block.get("block_id", "")) <= MAX_BLOCK_ID
        if block["type"] == "section":
            text = block["text"]
            assert text["type"] in {"mrkdwn", "plain_text"}
            assert 0 < len(text["text"]) <= MAX_SECTION_TEXT, len(text["text"])
        elif block["type"] == "context":
            elements = block["elements"]
            assert 0 < len(elements) <= MAX_CONTEXT_ELEMENTS
            for element in elements:
                assert element["type"] in {"mrkdwn", "plain_text"}
                assert 0 < len(element["text"]) <= MAX_TEXT_OBJECT
                assert isinstance(element.get("verbatim", False), bool)
        elif block["type"] == "context_actions":
            elements = block["elements"]
            assert 0 < len(elements) <= MAX_CONTEXT_ACTIONS
            for element in elements:
                assert element["type"] == "feedback_buttons"
                assert len(element.get("action_id", "")) <= MAX_BLOCK_ID
                for side in ("positive_button", "negative_button"):
                    button = element[side]
                    assert button["text"]["type"] == "plain_text"
                    assert 0 < len(button["text"]["text"]) <= MAX_BUTTON_TEXT
                    assert 0 < len(button["value"]) <= MAX_BUTTON_VALUE
                    assert len(button.get("accessibility_label", "")) <= MAX_BUTTON_TEXT
        else:
            raise AssertionError(f"unexpected block type {block['type']}")
