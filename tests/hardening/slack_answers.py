"""What counts as a delivered Slack answer, whichever way the adapter delivers it."""

from __future__ import annotations

from tests.slack.mock_slack import MockSlack

# Every Web API method that writes an answer: posting, editing and streaming.
SLACK_WRITES = (
    "chat.postMessage",
    "chat.update",
    "chat.startStream",
    "chat.appendStream",
    "chat.stopStream",
)


def finished_answers(mock: MockSlack) -> int:
    """Answers Slack has in full: a stream stopped, or a placeholder edited into the answer."""
    return len(mock.of("chat.stopStream")) + len(mock.of("chat.update"))
