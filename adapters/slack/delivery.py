"""One reply's way onto Slack: a thinking status, the answer streamed into its thread (or posted
once where Slack cannot stream), and a record in the log of where it landed or why it did not."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from adapters.slack.render import Message, closing_blocks, reply_messages, stream_text, text_message
from bot.conversation_log import ModerationStore
from bot.messages import Exchange, IncomingMessage

logger = logging.getLogger(__name__)

THINKING_STATUS = "is reading the essay…"
LOADING_MESSAGES = ["Looking through my essay…", "Finding the passage…", "Choosing my words…"]
UNDELIVERED = (
    "I wrote an answer for you, but Slack would not let me post it here. "
    "Please ask me again in a moment."
)


@dataclass
class Place:
    """Where a reply goes: the channel, the thread it answers in and shows its status in (None:
    top level, no streaming), and who asked (chat streaming in channels names its recipient)."""

    channel: str
    thread: str | None
    user: str
    team: str


@dataclass
class Outcome:
    """The first message's ts (None: not delivered) and how it went."""

    ts: str | None = None
    detail: str = ""


def _error(exc: SlackApiError) -> str:
    return str(exc.response.get("error") or exc.response.status_code)


class ReplyDelivery:
    """Delivers one turn. `on_text` streams pieces (thread replies only); `finish` closes the
    stream with the citations, disclosure and feedback buttons, or posts the reply once."""

    def __init__(
        self,
        client: WebClient,
        place: Place,
        moderation: ModerationStore,
        disclosure: str,
        workspace_url: str = "",
    ) -> None:
        self.client = client
        self.place = place
        self.moderation = moderation
        self.disclosure = disclosure
        self.workspace_url = workspace_url
        self._stream_ts: str | None = None
        self._streaming = place.thread is not None
        self._streamed = ""
        self._broken = False
        self._lock = threading.Lock()
        self.delivered_ts: str | None = None

    # -- the agent surface --------------------------------------------------------------------

    def thinking(self) -> None:
        self._status(THINKING_STATUS, LOADING_MESSAGES)

    def clear_status(self) -> None:
        self._status("", None)

    def _status(self, status: str, loading: list[str] | None) -> None:
        if not self.place.thread:
            return
        try:
            self.client.assistant_threads_setStatus(
                channel_id=self.place.channel,
                thread_ts=self.place.thread,
                status=status,
                loading_messages=loading,
            )
        except SlackApiError as exc:
            logger.warning("assistant.threads.setStatus failed: %s", _error(exc))

    def title(self, text: str) -> None:
        """Names a DM thread after its first question, as Slack's list of agent threads shows it."""
        if not self.place.thread:
            return
        title = " ".join(text.split())
        title = title if len(title) <= 60 else title[:59].rstrip() + "…"
        try:
            self.client.assistant_threads_setTitle(
                channel_id=self.place.channel, thread_ts=self.place.thread, title=title
            )
        except SlackApiError as exc:
            logger.warning("assistant.threads.setTitle failed: %s", _error(exc))

    # -- streaming ----------------------------------------------------------------------------

    def on_text(self, piece: str) -> None:
        """One piece of the answer, the direct answer first; streamed as soon as it is known."""
        with self._lock:
            if not self._streaming or self._broken or not piece:
                return
            try:
                if self._stream_ts is None:
                    started = self.client.chat_startStream(
                        channel=self.place.channel,
                        thread_ts=str(self.place.thread),
                        recipient_user_id=self.place.user,
                        recipient_team_id=self.place.team,
                    )
                    self._stream_ts = str(started.get("ts") or "") or None
                    if self._stream_ts is None:
                        raise RuntimeError("chat.startStream returned no ts")
                self.client.chat_appendStream(
                    channel=self.place.channel,
                    ts=self._stream_ts,
                    markdown_text=stream_text(piece),
                )
                self._streamed += piece
            except (SlackApiError, RuntimeError) as exc:
                detail = _error(exc) if isinstance(exc, SlackApiError) else str(exc)
                logger.warning("chat streaming failed (%s); the answer will be posted", detail)
                self._broken = True
                if self._stream_ts is None:
                    self._streaming = False

    # -- finishing ----------------------------------------------------------------------------

    def finish(self, exchange: Exchange) -> None:
        """Closes the stream (or posts once), clears the status and records the delivery."""
        with self._lock:
            if self._stream_ts is not None:
                outcome = self._close_stream(exchange)
            else:
                payloads = reply_messages(
                    exchange.reply, exchange_id=exchange.id, disclosure=self.disclosure
                )
                outcome = self._post_all(payloads)
        self.clear_status()
        self.delivered_ts = outcome.ts
        if outcome.ts is None:
            self._undelivered(exchange, outcome.detail)
        else:
            self.moderation.record_delivery(
                exchange.id, outcome.ts, self.permalink(outcome.ts), True, outcome.detail
            )

    def _close_stream(self, exchange: Exchange) -> Outcome:
        assert self._stream_ts is not None
        reply = exchange.reply
        rest = reply.text[len(self._streamed) :] if reply.text.startswith(self._streamed) else ""
        closing = closing_blocks(reply, exchange.id, self.disclosure)
        if not self._broken and (self._streamed == reply.text or rest):
            try:
                self.client.chat_stopStream(
                    channel=self.place.channel,
                    ts=self._stream_ts,
                    markdown_text=stream_text(rest) or None,
                    blocks=closing,
                )
                return Outcome(self._stream_ts, "streamed")
            except SlackApiError as exc:
                logger.warning("chat.stopStream failed: %s", _error(exc))
        # The stream broke or the text changed under it: end it, put the whole reply in its place.
        if self._broken:
            try:
                self.client.chat_stopStream(channel=self.place.channel, ts=self._stream_ts)
            except SlackApiError as exc:
                logger.info("chat.stopStream of a broken stream failed: %s", _error(exc))
        with_blocks = reply_messages(reply, exchange_id=exchange.id, disclosure=self.disclosure)
        try:
            self.client.chat_update(
                channel=self.place.channel, ts=self._stream_ts, **with_blocks[0]
            )
        except SlackApiError as exc:
            logger.warning("chat.update of a broken stream failed: %s", _error(exc))
            return self._post_all(with_blocks)
        self._post_all(with_blocks[1:])
        return Outcome(self._stream_ts, "stream replaced by chat.update")

    def _post_all(self, payloads: list[Message]) -> Outcome:
        """Posts the messages in order; the outcome names the first, or the failure."""
        first: str | None = None
        for payload in payloads:
            ts, detail = self.post(payload)
            if ts is None:
                return Outcome(first, detail)
            first = first or ts
        return Outcome(first, "posted")

    def post(self, payload: Message) -> tuple[str | None, str]:
        try:
            response = self.client.chat_postMessage(
                channel=self.place.channel,
                thread_ts=self.place.thread,
                unfurl_links=False,
                unfurl_media=False,
                **payload,
            )
        except SlackApiError as exc:
            logger.error("chat.postMessage failed: %s", _error(exc))
            return None, f"chat.postMessage: {_error(exc)}"
        return str(response.get("ts") or "") or None, "posted"

    def _undelivered(self, exchange: Exchange, detail: str) -> None:
        """Every retry failed: the log says so, and the asker hears it in the persona's voice."""
        logger.error(
            "could not deliver a Slack reply: %s", detail, extra={"exchange_id": exchange.id}
        )
        self.moderation.record_delivery(exchange.id, None, None, False, detail)
        ephemeral(self.client, self.place, UNDELIVERED)

    def permalink(self, ts: str) -> str | None:
        """The message's jump link from chat.getPermalink, else built from the workspace URL."""
        try:
            found = self.client.chat_getPermalink(channel=self.place.channel, message_ts=ts)
            link = str(found.get("permalink") or "")
            if link:
                return link
        except SlackApiError as exc:
            logger.info("chat.getPermalink failed: %s", _error(exc))
        if not self.workspace_url:
            return None
        link = (
            f"{self.workspace_url.rstrip('/')}/archives/{self.place.channel}/p{ts.replace('.', '')}"
        )
        if self.place.thread and self.place.thread != ts:
            link += f"?thread_ts={self.place.thread}&cid={self.place.channel}"
        return link


def ephemeral(client: WebClient, place: Place, text: str) -> bool:
    """A note only the asker sees (in a DM, Slack shows it there too)."""
    try:
        client.chat_postEphemeral(
            channel=place.channel, user=place.user, thread_ts=place.thread, **text_message(text)
        )
    except SlackApiError as exc:
        logger.warning("chat.postEphemeral failed: %s", _error(exc))
        return False
    return True


def place_of(message: IncomingMessage) -> Place:
    """Every answer to an event is a thread reply (streamed), and the status shows in that thread."""
    thread = message.thread or None
    return Place(
        channel=message.channel,
        thread=thread,
        user=message.user_id,
        team=message.tenant,
    )
