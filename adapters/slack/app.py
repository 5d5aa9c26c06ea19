"""The Bolt app: listeners ack at once, then hand the slow work to a bounded pool of workers."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.webhook import WebhookClient

from adapters.slack.dedup import Deduplicator, MemoryDeduplicator
from adapters.slack.render import Message, reply_messages, text_message
from adapters.slack.settings import SlackSettings
from adapters.slack.translate import from_command, from_event
from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.messages import Exchange, IncomingMessage
from bot.serving.logging_setup import request_context
from bot.serving.ratelimit import RateLimiter, TokenBucketLimiter

logger = logging.getLogger(__name__)

REPORT_CALLBACK = "report_reply"
ANSWER_BLOCK_PREFIX = "persona-answer:"
THINKING = "Let me look through my essay…"
_MAX_REMEMBERED = 10_000


def retry_handlers(retries: int) -> list[RetryHandler]:
    """429s wait for Retry-After; 500/503 and dropped connections back off exponentially."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=retries),
        RateLimitErrorRetryHandler(max_retry_count=retries),
        ServerErrorRetryHandler(max_retry_count=retries),
    ]


def web_client(settings: SlackSettings, token: str) -> WebClient:
    return WebClient(
        token=token,
        base_url=settings.api_base_url,
        timeout=15,
        retry_handlers=retry_handlers(settings.api_retries),
    )


class _Recent:
    """A bounded, thread-safe map that forgets its oldest entries first."""

    def __init__(self, limit: int = _MAX_REMEMBERED) -> None:
        self._items: OrderedDict[str, str] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def put(self, key: str, value: str) -> None:
        with self._lock:
            self._items[key] = value
            self._items.move_to_end(key)
            while len(self._items) > self._limit:
                self._items.popitem(last=False)

    def get(self, key: str) -> str | None:
        with self._lock:
            return self._items.get(key)


@dataclass(frozen=True)
class _Gate:
    """What the controls decided before any work: answer, say something short, or stay silent."""

    answer: bool
    notice: str | None = None


_SILENT = _Gate(answer=False)
_ANSWER = _Gate(answer=True)


class SlackBot:
    """Owns the Bolt app, its controls and the worker pool that runs the core."""

    def __init__(
        self,
        core: DialogueCore,
        settings: SlackSettings,
        moderation: ModerationStore,
        client: WebClient,
        *,
        signing_secret: str | None = None,
        deduplicator: Deduplicator | None = None,
        limiter: RateLimiter | None = None,
    ) -> None:
        self.core = core
        self.settings = settings
        self.moderation = moderation
        self.deduplicator = deduplicator or MemoryDeduplicator(settings.dedup_ttl_seconds)
        self.limiter = limiter or TokenBucketLimiter(
            settings.rate_limit_count, settings.rate_limit_seconds
        )
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="slack-answer")
        self._waiting = threading.BoundedSemaphore(settings.max_waiting)
        self._pending = 0  # turns submitted and not yet answered, for the queue-depth gauge
        self._pending_lock = threading.Lock()
        self._answers = _Recent()  # message ts → exchange id, for "Report reply"
        self._threads = _Recent()  # channel:thread_ts the persona takes part in
        self._names = _Recent()  # user id → display name
        self.app = App(
            client=client,
            signing_secret=signing_secret or "",
            request_verification_enabled=signing_secret is not None,
            name="personabot",
        )
        self.app.use(self._deduplicate)
        self.app.command(settings.command)(self._on_command)
        self.app.event("app_mention")(self._on_mention)
        self.app.event("message")(self._on_message)
        self.app.shortcut(REPORT_CALLBACK)(self._on_report)

    @property
    def pending(self) -> int:
        return self._pending

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    # -- controls ---------------------------------------------------------------------------

    def _deduplicate(self, body: dict[str, Any], next: Callable[[], None]) -> BoltResponse | None:
        """Retried deliveries of an event are acked and dropped: one answer, one log row."""
        event_id = body.get("event_id")
        key = f"{body.get('team_id', '')}:{event_id}"
        if event_id and not self.deduplicator.first_time(key):
            logger.info("dropping redelivered event %s", event_id)
            return BoltResponse(status=200, body="")
        next()
        return None

    def _gate(self, message: IncomingMessage, direct: bool) -> _Gate:
        if self.moderation.is_banned(message.platform, message.tenant, message.user_id):
            return _SILENT
        if direct and not self.settings.allow_dms:
            return _Gate(False, "I only answer in channels here, not in direct messages.")
        allowed = self.settings.allowed_channels
        if not direct and allowed and message.channel not in allowed:
            return _Gate(False, "I have not been switched on in this channel.")
        if len(message.text) > self.settings.max_input_chars:
            return _Gate(False, self.core.canned("too_long", limit=self.settings.max_input_chars))
        if not message.text:
            return _ANSWER
        decision = self.limiter.hit(f"{message.tenant}:{message.user_id}")
        if not decision.allowed:
            seconds = max(1, math.ceil(decision.retry_after_s))
            return _Gate(False, self.core.canned("slow_down", seconds=seconds))
        return _ANSWER

    def _help(self) -> Message:
        command = self.settings.command
        return text_message(
            self.core.canned("greeting"),
            note=(
                f"Ask with `{command} your question`, mention me in a channel (I answer in the "
                "thread and follow it), or write to me directly."
            ),
        )

    # -- slash command ----------------------------------------------------------------------

    def _on_command(self, ack: Ack, command: dict[str, Any]) -> None:
        """Acks inside Slack's 3 s with a note, then answers through the command's response_url."""
        message = from_command(command)
        gate = self._gate(message, direct=command.get("channel_name") == "directmessage")
        if not gate.answer:
            if gate.notice:
                ack(**text_message(gate.notice))
            else:
                ack()
            return
        if not message.text:
            ack(**self._help())
            return
        response_url = str(command.get("response_url") or "")
        if not response_url.startswith(("https://", "http://")):
            ack(**text_message("Slack sent no address to answer at; please try again."))
            return
        if not self._waiting.acquire(blocking=False):
            ack(**text_message(self.core.canned("busy")))
            return
        ack(**text_message(THINKING))
        hook = WebhookClient(response_url, retry_handlers=retry_handlers(self.settings.api_retries))

        def deliver(exchange: Exchange | None, text: str | None) -> None:
            visibility = "in_channel" if self.settings.answer_in_channel else "ephemeral"
            if exchange is None:
                payloads = [text_message(text or "")]
            else:
                payloads = reply_messages(
                    exchange.reply,
                    asked=f"{message.user_name} asked: {message.text}",
                    block_id=ANSWER_BLOCK_PREFIX + exchange.id,
                )
            for payload in payloads:
                sent = hook.send(response_type=visibility, **payload)
                if sent.status_code != 200:
                    logger.error("response_url answered %s: %s", sent.status_code, sent.body)
                    return

        self._submit(message, deliver)

    # -- events -----------------------------------------------------------------------------

    def _on_mention(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("bot_id") or event.get("subtype"):
            return
        self._on_conversation(event, context, client, direct=False)

    def _on_message(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """DMs, and follow-ups in threads the persona answers in; mentions are app_mention's."""
        if event.get("bot_id") or event.get("subtype") or not event.get("user"):
            return
        if event.get("channel_type") == "im":
            self._on_conversation(event, context, client, direct=True)
            return
        thread = event.get("thread_ts")
        mentioned = context.bot_user_id and f"<@{context.bot_user_id}>" in str(event.get("text"))
        if thread and not mentioned and self._threads.get(f"{event.get('channel')}:{thread}"):
            self._on_conversation(event, context, client, direct=False)

    def _on_conversation(
        self, event: Mapping[str, Any], context: BoltContext, client: WebClient, direct: bool
    ) -> None:
        team = str(context.team_id or event.get("team") or "")
        user = str(event.get("user") or "")
        message = from_event(event, team, user, context.bot_user_id)
        gate = self._gate(message, direct)
        if gate.notice:
            self._ephemeral(client, message, gate.notice, direct)
        if not gate.answer:
            return
        if not message.text:
            self._post(client, message, self._help())
            return
        if not self._waiting.acquire(blocking=False):
            self._ephemeral(client, message, self.core.canned("busy"), direct)
            return
        if not direct and message.thread:
            self._threads.put(f"{message.channel}:{message.thread}", "1")

        placeholder: dict[str, str] = {}

        def prepare() -> IncomingMessage:
            named = message.model_copy(update={"user_name": self._user_name(client, user)})
            ts = self._post(client, message, text_message(THINKING))
            if ts:
                placeholder["ts"] = ts
            return named

        def deliver(exchange: Exchange | None, text: str | None) -> None:
            if exchange is None:
                payloads = [text_message(text or "")]
            else:
                payloads = reply_messages(
                    exchange.reply, block_id=ANSWER_BLOCK_PREFIX + exchange.id
                )
            first, rest = payloads[0], payloads[1:]
            ts = placeholder.get("ts")
            # Remembered before the edit lands, so a report on the answer can never beat it.
            if exchange is not None and ts:
                self._answers.put(f"{message.channel}:{ts}", exchange.id)
            if ts and self._update(client, message.channel, ts, first):
                posted: str | None = ts
            else:
                posted = self._post(client, message, first)
            if exchange is not None and posted and posted != ts:
                self._answers.put(f"{message.channel}:{posted}", exchange.id)
            for payload in rest:
                more = self._post(client, message, payload)
                if exchange is not None and more:
                    self._answers.put(f"{message.channel}:{more}", exchange.id)

        self._submit(message, deliver, prepare)

    # -- report shortcut --------------------------------------------------------------------

    def _on_report(
        self, ack: Ack, shortcut: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        """Flags the exchange behind a persona reply, then confirms in a small modal."""
        ack()
        team = str(context.team_id or shortcut.get("team", {}).get("id") or "")
        user = str(shortcut.get("user", {}).get("id") or "")
        if self.moderation.is_banned("slack", team, user):
            return
        reported = shortcut.get("message") or {}
        channel = str((shortcut.get("channel") or {}).get("id") or "")
        exchange_id = self._exchange_of(reported, channel, context)
        if exchange_id is None:
            title, text = "Not my reply", "You can only report replies that I wrote."
        elif self.moderation.flag(
            exchange_id, f"slack:{team}:{user}", "Reported with Slack's Report reply shortcut"
        ):
            title, text = "Reported", "Thank you. A moderator will review this reply."
        else:
            title, text = "Not found", "I could not find that reply in my log; nothing was sent."
        try:
            client.views_open(
                trigger_id=str(shortcut.get("trigger_id") or ""),
                view={
                    "type": "modal",
                    "title": {"type": "plain_text", "text": title},
                    "close": {"type": "plain_text", "text": "Close"},
                    "blocks": text_message(text)["blocks"],
                },
            )
        except SlackApiError as exc:
            logger.warning("could not confirm a report: %s", exc.response.get("error"))

    def _exchange_of(
        self, reported: Mapping[str, Any], channel: str, context: BoltContext
    ) -> str | None:
        """Only the persona's own messages count: by the ts map, else by the answer's block id."""
        own = (context.bot_user_id and reported.get("user") == context.bot_user_id) or (
            context.bot_id and reported.get("bot_id") == context.bot_id
        )
        if not own:
            return None
        remembered = self._answers.get(f"{channel}:{reported.get('ts')}")
        if remembered:
            return remembered
        for block in reported.get("blocks") or []:
            block_id = str(block.get("block_id") or "")
            if block_id.startswith(ANSWER_BLOCK_PREFIX):
                return block_id.removeprefix(ANSWER_BLOCK_PREFIX)
        return None

    # -- work off the request thread --------------------------------------------------------

    def _submit(
        self,
        message: IncomingMessage,
        deliver: Callable[[Exchange | None, str | None], None],
        prepare: Callable[[], IncomingMessage] | None = None,
    ) -> None:
        """Runs a turn the caller reserved a waiting slot for (see `_waiting`), then frees it."""

        # The deadline runs from arrival: a turn that waited for a worker gets less model time,
        # and none at all once it has passed (the essay's quote answers alone).
        deadline = time.monotonic() + self.core.settings.generation_deadline_s

        def work() -> None:
            try:
                with request_context():
                    turn = prepare() if prepare else message
                    try:
                        exchange = self.core.respond(turn, deadline=deadline)
                    except Exception:
                        logger.exception("the core failed on a Slack message")
                        self._safely(deliver, None, self.core.canned("unavailable"))
                        return
                    self._safely(deliver, exchange, None)
            finally:
                with self._pending_lock:
                    self._pending -= 1
                self._waiting.release()

        with self._pending_lock:
            self._pending += 1
        self._pool.submit(work)

    @staticmethod
    def _safely(
        deliver: Callable[[Exchange | None, str | None], None],
        exchange: Exchange | None,
        text: str | None,
    ) -> None:
        try:
            deliver(exchange, text)
        except Exception:
            logger.exception("could not deliver a Slack answer")

    # -- Web API helpers --------------------------------------------------------------------

    def _post(self, client: WebClient, message: IncomingMessage, payload: Message) -> str | None:
        try:
            response = client.chat_postMessage(
                channel=message.channel,
                thread_ts=message.thread,
                unfurl_links=False,
                unfurl_media=False,
                **payload,
            )
        except SlackApiError as exc:
            logger.error("chat.postMessage failed: %s", exc.response.get("error"))
            return None
        return str(response.get("ts") or "") or None

    def _update(self, client: WebClient, channel: str, ts: str, payload: Message) -> bool:
        try:
            client.chat_update(channel=channel, ts=ts, **payload)
        except SlackApiError as exc:
            logger.warning("chat.update failed: %s", exc.response.get("error"))
            return False
        return True

    def _ephemeral(
        self, client: WebClient, message: IncomingMessage, text: str, direct: bool
    ) -> None:
        """Notices go to the one user concerned; in a DM that is simply a message."""
        payload = text_message(text)
        if direct:
            self._post(client, message, payload)
            return
        try:
            client.chat_postEphemeral(
                channel=message.channel, user=message.user_id, thread_ts=message.thread, **payload
            )
        except SlackApiError as exc:
            logger.warning("chat.postEphemeral failed: %s", exc.response.get("error"))

    def _user_name(self, client: WebClient, user: str) -> str:
        """The display name for the log; the id when users.info is unavailable."""
        known = self._names.get(user)
        if known:
            return known
        try:
            profile = client.users_info(user=user).get("user") or {}
        except SlackApiError:
            return user
        name = str(
            (profile.get("profile") or {}).get("display_name")
            or profile.get("real_name")
            or profile.get("name")
            or user
        )
        self._names.put(user, name)
        return name
