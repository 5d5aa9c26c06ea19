"""The Bolt app: listeners ack at once, then hand the slow work to a bounded pool of workers."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from slack_bolt import Ack, App, BoltContext, BoltResponse, SetSuggestedPrompts
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
from adapters.slack.delivery import UNDELIVERED, Place, ReplyDelivery, ephemeral, place_of
from adapters.slack.render import (
    ANSWER_BLOCK_PREFIX,
    BAD,
    FEEDBACK_ACTION,
    FEEDBACK_BLOCK_PREFIX,
    GOOD,
    Message,
    asked_block,
    reply_messages,
    text_message,
)
from adapters.slack.settings import SlackSettings
from adapters.slack.threads import ConversationIndex, LogThreads, ThreadFollower
from adapters.slack.translate import from_command, from_event, mentioned_users, plain_text
from bot.conversation_log import ModerationStore
from bot.core import DialogueCore
from bot.messages import Exchange, IncomingMessage, ReplyKind
from bot.serving.logging_setup import request_context
from bot.serving.ratelimit import RateLimiter, TokenBucketLimiter

logger = logging.getLogger(__name__)

REPORT_CALLBACK = "report_reply"
REPORT_VIEW = "report_reply_confirm"
REASON_BLOCK, REASON_ACTION = "reason", "reason_input"
THINKING = "Let me look through my essay…"
# How long /ask waits for the reply before acking with a note: a refusal or a greeting is ready
# in milliseconds and goes back in the ack itself, so nothing is posted and then replaced.
ACK_WAIT_S = 0.5
# Replies only the asker should see when they come from /ask in a channel.
_PRIVATE_KINDS = {ReplyKind.GREETING, ReplyKind.INJECTION}
# Message subtypes that carry a person's words: plain, "also send to channel", text with a file.
_ANSWERED_SUBTYPES = {None, "thread_broadcast", "file_share"}
_MAX_REMEMBERED = 10_000
_MAX_PROMPTS = 4
REPORT_TTL_S = 90 * 24 * 3600


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
    """A bounded, thread-safe map that forgets its oldest entries first (a cache, never the
    only record: whatever it holds can be found again from Slack or the log)."""

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
    """What the controls decided before any work: answer, say something short, or stay silent.
    A persona line (too long, slow down) comes with its logged exchange."""

    answer: bool
    notice: str | None = None
    exchange: Exchange | None = None


_SILENT = _Gate(answer=False)
_ANSWER = _Gate(answer=True)


@dataclass
class _InlineAck:
    """Hands a /ask reply that is ready within ACK_WAIT_S to the listener, to send as the ack;
    after that the worker posts it through response_url instead. Exactly one of them sends."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    ready: threading.Event = field(default_factory=threading.Event)
    reply: tuple[str, Message, Exchange] | None = None
    closed: bool = False

    def offer(self, visibility: str, payload: Message, exchange: Exchange) -> bool:
        with self.lock:
            if self.closed:
                return False
            self.reply, self.closed = (visibility, payload, exchange), True
        self.ready.set()
        return True

    def take(self, timeout: float) -> tuple[str, Message, Exchange] | None:
        self.ready.wait(timeout)
        with self.lock:
            self.closed = True
            return self.reply


def suggested_prompts(topics: list[str]) -> list[dict[str, str]]:
    """Up to four prompts drawn from the essay's topics, asked the way a reader would."""
    prompts = []
    for topic in topics[:_MAX_PROMPTS]:
        second_person = re.sub(r"\bI\b", "you", re.sub(r"\bmy\b", "your", topic))
        title = topic[:1].upper() + topic[1:]
        prompts.append(
            {
                "title": title if len(title) <= 75 else title[:74].rstrip() + "…",
                "message": f"Tell me about {second_person}.",
            }
        )
    return prompts


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
        threads: ThreadFollower | None = None,
        reports: Deduplicator | None = None,
        workspace_url: str = "",
    ) -> None:
        self.core = core
        self.settings = settings
        self.moderation = moderation
        self.deduplicator = deduplicator or MemoryDeduplicator(settings.dedup_ttl_seconds)
        self.limiter = limiter or TokenBucketLimiter(
            settings.rate_limit_count, settings.rate_limit_seconds
        )
        self.threads = threads if threads is not None else _log_threads(core)
        self.reports = reports or MemoryDeduplicator(REPORT_TTL_S)
        self.workspace_url = workspace_url
        meta = core.knowledge.metadata
        self.disclosure = (
            f"AI persona of {meta.persona_name}. It answers only from one essay, “{meta.title}”."
        )
        self.prompts = suggested_prompts(list(meta.topics))
        self._pool = ThreadPoolExecutor(settings.workers, thread_name_prefix="slack-answer")
        self._waiting = threading.BoundedSemaphore(settings.max_waiting)
        self._pending = 0  # turns submitted and not yet answered, for the queue-depth gauge
        self._pending_lock = threading.Lock()
        self._answers = _Recent()  # channel:ts → exchange id, for "Report reply"
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
        self.app.event("app_home_opened")(self._on_home_opened)
        self.app.action(FEEDBACK_ACTION)(self._on_feedback)
        self.app.shortcut(REPORT_CALLBACK)(self._on_report)
        self.app.view(REPORT_VIEW)(self._on_report_submitted)

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
            return self._canned(message, "too_long", limit=self.settings.max_input_chars)
        if not message.text:
            return _ANSWER
        decision = self.limiter.hit(f"{message.tenant}:{message.user_id}")
        if not decision.allowed:
            seconds = max(1, math.ceil(decision.retry_after_s))
            return self._canned(message, "slow_down", seconds=seconds)
        return _ANSWER

    def _canned(self, message: IncomingMessage, template: str, **values: object) -> _Gate:
        exchange = self.core.record_canned(message, template, **values)
        return _Gate(False, exchange.reply.text, exchange)

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
        """Acks inside Slack's 3 s: with the reply itself when it is ready at once (refusals and
        greetings only to the asker), else with a note, then answers through response_url."""
        message = from_command(command)
        gate = self._gate(message, direct=command.get("channel_name") == "directmessage")
        if not gate.answer:
            if gate.notice:
                ack(**text_message(gate.notice), response_type="ephemeral")
            else:
                ack()
            return
        if not message.text:
            ack(**self._help(), response_type="ephemeral")
            return
        response_url = str(command.get("response_url") or "")
        if not response_url.startswith(("https://", "http://")):
            ack(**text_message("Slack sent no address to answer at; please try again."))
            return
        if not self._waiting.acquire(blocking=False):
            busy = self.core.record_canned(message, "busy")
            ack(**text_message(busy.reply.text), response_type="ephemeral")
            return
        hook = WebhookClient(response_url, retry_handlers=retry_handlers(self.settings.api_retries))
        inline = _InlineAck()
        place = Place(message.channel, None, message.user_id, message.tenant)

        def deliver(exchange: Exchange) -> None:
            payloads = self._ask_payloads(message, exchange)
            visibility, first = payloads[0]
            if len(payloads) == 1 and inline.offer(visibility, first, exchange):
                return
            for visibility, payload in payloads:
                sent = hook.send(
                    response_type=visibility, unfurl_links=False, unfurl_media=False, **payload
                )
                if sent.status_code != 200:
                    detail = f"response_url answered {sent.status_code}: {sent.body}"
                    logger.error("could not deliver an /ask reply: %s", detail)
                    self.moderation.record_delivery(exchange.id, None, None, False, detail)
                    ephemeral(self.app.client, place, UNDELIVERED)
                    return
            self.moderation.record_delivery(exchange.id, None, None, True, "response_url")

        self._submit(message, deliver)
        ready = inline.take(ACK_WAIT_S)
        if ready is None:
            ack(**text_message(THINKING), response_type="ephemeral")
            return
        visibility, payload, exchange = ready
        ack(**payload, response_type=visibility, unfurl_links=False, unfurl_media=False)
        self.moderation.record_delivery(exchange.id, None, None, True, "slash command ack")

    def _ask_payloads(
        self, message: IncomingMessage, exchange: Exchange
    ) -> list[tuple[str, Message]]:
        """Answers go to the channel under the echoed question; refusals, injection notices and
        greetings, and anything when ANSWER_IN_CHANNEL is off, only to the asker."""
        reply = exchange.reply
        private = reply.refused or reply.kind in _PRIVATE_KINDS
        if private or not self.settings.answer_in_channel:
            messages = reply_messages(reply, disclosure=self.disclosure)
            return [("ephemeral", payload) for payload in messages]
        messages = reply_messages(
            reply,
            asked=asked_block(message.user_name, message.text),
            exchange_id=exchange.id,
            disclosure=self.disclosure,
        )
        return [("in_channel", payload) for payload in messages]

    # -- events -----------------------------------------------------------------------------

    def _on_mention(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        if event.get("bot_id") or event.get("subtype") not in _ANSWERED_SUBTYPES:
            return
        if str(event.get("channel") or "").startswith("D"):  # a DM: message.im answers it
            return
        self._on_conversation(event, context, client, direct=False)

    def _on_message(self, event: dict[str, Any], context: BoltContext, client: WebClient) -> None:
        """DMs, and follow-ups in threads the persona answers in; mentions are app_mention's."""
        if event.get("bot_id") or event.get("subtype") not in _ANSWERED_SUBTYPES:
            return
        if not event.get("user"):
            return
        if event.get("channel_type") == "im":
            self._on_conversation(event, context, client, direct=True)
            return
        thread = event.get("thread_ts")
        mentioned = context.bot_user_id and f"<@{context.bot_user_id}" in str(event.get("text"))
        if not thread or mentioned:
            return
        team = str(context.team_id or event.get("team") or "")
        key = ("slack", team, str(event.get("channel") or ""), str(thread))
        if self.threads is not None and self.threads.follows(key):
            self._on_conversation(event, context, client, direct=False)

    def _on_home_opened(
        self,
        event: dict[str, Any],
        context: BoltContext,
        set_suggested_prompts: SetSuggestedPrompts | None = None,
    ) -> None:
        """Opening the app's Messages tab (Slack's agent experience) shows suggested prompts.
        Bolt hands over `set_suggested_prompts` for exactly this event, bound to the DM and with
        no thread_ts (which the agent experience would silently ignore)."""
        if event.get("tab") != "messages" or set_suggested_prompts is None:
            return
        team = str(context.team_id or "")
        if self.moderation.is_banned("slack", team, str(event.get("user") or "")):
            return
        try:
            set_suggested_prompts(prompts=list(self.prompts), title="Ask me about my essay")
        except SlackApiError as exc:
            logger.warning(
                "assistant.threads.setSuggestedPrompts failed: %s", exc.response.get("error")
            )

    def _on_conversation(
        self, event: Mapping[str, Any], context: BoltContext, client: WebClient, direct: bool
    ) -> None:
        team = str(context.team_id or event.get("team") or "")
        user = str(event.get("user") or "")
        message = from_event(event, team, user, context.bot_user_id)
        place = place_of(message)
        gate = self._gate(message, direct)
        if gate.notice:
            ephemeral(client, place, gate.notice)
        if not gate.answer:
            return
        if not message.text:
            # A file with no words, or a bare mention: say what I can do instead.
            note = self.core.canned("not_text") if event.get("files") else None
            payload = text_message(note) if note else self._help()
            ReplyDelivery(client, place, self.moderation, self.disclosure).post(payload)
            return
        if not self._waiting.acquire(blocking=False):
            busy = self.core.record_canned(message, "busy")
            ephemeral(client, place, busy.reply.text)
            return
        if not direct and self.threads is not None:
            self.threads.join(message.conversation_key())
        delivery = ReplyDelivery(
            client, place, self.moderation, self.disclosure, self.workspace_url
        )
        raw = str(event.get("text") or "")

        def prepare() -> IncomingMessage:
            delivery.thinking()
            if direct and not event.get("thread_ts"):
                delivery.title(message.text)
            names = {  # people Slack could not name are left out of the text, not shown as ids
                uid: name
                for uid in mentioned_users(raw)
                if uid != context.bot_user_id and (name := self._user_name(client, uid)) != uid
            }
            return message.model_copy(
                update={
                    "user_name": names.get(user) or self._user_name(client, user),
                    "text": plain_text(raw, context.bot_user_id, names) if names else message.text,
                }
            )

        def deliver(exchange: Exchange) -> None:
            delivery.finish(exchange)
            if delivery.delivered_ts:
                self._answers.put(f"{message.channel}:{delivery.delivered_ts}", exchange.id)

        self._submit(message, deliver, prepare, delivery.on_text)

    # -- feedback and reports ---------------------------------------------------------------

    def _on_feedback(
        self, ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext
    ) -> None:
        """A thumbs up or down: one vote per person and answer, changed by voting again."""
        ack()
        team = str(context.team_id or (body.get("team") or {}).get("id") or "")
        user = str((body.get("user") or {}).get("id") or "")
        block_id = str(action.get("block_id") or "")
        value = {GOOD: 1, BAD: -1}.get(str(action.get("value") or ""))
        if not user or value is None or not block_id.startswith(FEEDBACK_BLOCK_PREFIX):
            return
        if self.moderation.is_banned("slack", team, user):
            return
        exchange_id = block_id.removeprefix(FEEDBACK_BLOCK_PREFIX)
        if not self.moderation.vote(exchange_id, f"slack:{team}:{user}", value):
            logger.info("a vote on an exchange the log does not know: %s", exchange_id)

    def _on_report(
        self, ack: Ack, shortcut: dict[str, Any], context: BoltContext, client: WebClient
    ) -> None:
        """Opens a modal asking why (the reason field) with Report as the confirm step."""
        ack()
        team = str(context.team_id or shortcut.get("team", {}).get("id") or "")
        user = str(shortcut.get("user", {}).get("id") or "")
        if self.moderation.is_banned("slack", team, user):
            return
        reported = shortcut.get("message") or {}
        channel = str((shortcut.get("channel") or {}).get("id") or "")
        exchange_id = self._exchange_of(reported, channel, context)
        if exchange_id is None:
            view = _notice_view("Not my reply", "You can only report replies that I wrote.")
        else:
            view = _report_view(exchange_id, channel)
        try:
            client.views_open(trigger_id=str(shortcut.get("trigger_id") or ""), view=view)
        except SlackApiError as exc:
            logger.warning("could not open the report form: %s", exc.response.get("error"))

    def _on_report_submitted(
        self, ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
    ) -> None:
        """Flags the exchange with the reporter's reason; one open report per person and answer."""
        user = body.get("user") or {}
        team = str(
            context.team_id or (body.get("team") or {}).get("id") or user.get("team_id") or ""
        )
        reporter = f"slack:{team}:{user.get('id') or ''}"
        try:
            exchange_id = str(json.loads(str(view.get("private_metadata") or "{}"))["exchange"])
        except (ValueError, KeyError, TypeError):
            ack(
                response_action="update",
                view=_notice_view("Not found", "That report form was damaged; nothing was sent."),
            )
            return
        values = (view.get("state") or {}).get("values") or {}
        reason = str(((values.get(REASON_BLOCK) or {}).get(REASON_ACTION) or {}).get("value") or "")
        reason = " ".join(reason.split())[:500] or "Reported with Slack's Report reply shortcut"
        if not self.reports.first_time(f"{exchange_id}:{reporter}"):
            title, text = (
                "Already reported",
                "You have already reported this reply; a moderator will review it.",
            )
        elif self.moderation.flag(exchange_id, reporter, reason):
            title, text = "Reported", "Thank you. A moderator will review this reply."
        else:
            title, text = "Not found", "I could not find that reply in my log; nothing was sent."
        ack(response_action="update", view=_notice_view(title, text))

    def _exchange_of(
        self, reported: Mapping[str, Any], channel: str, context: BoltContext
    ) -> str | None:
        """Only the persona's own messages count: by the ts cache, else by the block ids every
        answer carries (its first section, its feedback buttons)."""
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
            for prefix in (ANSWER_BLOCK_PREFIX, FEEDBACK_BLOCK_PREFIX):
                if block_id.startswith(prefix):
                    return block_id.removeprefix(prefix)
        return None

    # -- work off the request thread --------------------------------------------------------

    def _submit(
        self,
        message: IncomingMessage,
        deliver: Callable[[Exchange], None],
        prepare: Callable[[], IncomingMessage] | None = None,
        on_text: Callable[[str], None] | None = None,
    ) -> None:
        """Runs a turn the caller reserved a waiting slot for (see `_waiting`), then frees it."""

        # The deadline runs from arrival: a turn that waited for a worker gets less model time,
        # and none at all once it has passed (the essay's quote answers alone).
        deadline = time.monotonic() + self.core.settings.reply_deadline_s

        def work() -> None:
            try:
                with request_context():
                    try:
                        turn = prepare() if prepare else message
                        exchange = self.core.respond(turn, on_text, deadline=deadline)
                    except Exception:
                        logger.exception("the core failed on a Slack message")
                        exchange = self.core.record_canned(message, "unavailable")
                    self._safely(deliver, exchange)
            finally:
                with self._pending_lock:
                    self._pending -= 1
                self._waiting.release()

        with self._pending_lock:
            self._pending += 1
        self._pool.submit(work)

    @staticmethod
    def _safely(deliver: Callable[[Exchange], None], exchange: Exchange) -> None:
        try:
            deliver(exchange)
        except Exception:
            logger.exception("could not deliver a Slack answer")

    # -- Web API helpers --------------------------------------------------------------------

    def _user_name(self, client: WebClient, user: str) -> str:
        """The display name (for the log and for mentions in a question); the id when
        users.info is unavailable (the least-data manifest has no users:read)."""
        known = self._names.get(user)
        if known:
            return known
        try:
            profile = client.users_info(user=user).get("user") or {}
        except SlackApiError as exc:
            error = exc.response.get("error")
            logger.info("users.info failed (%s); the user id stands in", error)
            if error == "missing_scope":  # not a passing failure: do not ask again
                self._names.put(user, user)
            return user
        name = str(
            (profile.get("profile") or {}).get("display_name")
            or profile.get("real_name")
            or profile.get("name")
            or user
        )
        self._names.put(user, name)
        return name


def _log_threads(core: DialogueCore) -> ThreadFollower | None:
    return LogThreads(core.log) if isinstance(core.log, ConversationIndex) else None


def _notice_view(title: str, text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": title[:24]},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": text_message(text)["blocks"],
    }


def _report_view(exchange_id: str, channel: str) -> dict[str, Any]:
    """The report form: why (optional), then Report to confirm or Cancel."""
    return {
        "type": "modal",
        "callback_id": REPORT_VIEW,
        "private_metadata": json.dumps({"exchange": exchange_id, "channel": channel}),
        "title": {"type": "plain_text", "text": "Report reply"},
        "submit": {"type": "plain_text", "text": "Report"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            *text_message(
                "This sends my reply to the moderators for review. They will see the reply, "
                "the question and what you write below."
            )["blocks"],
            {
                "type": "input",
                "block_id": REASON_BLOCK,
                "optional": True,
                "label": {"type": "plain_text", "text": "What is wrong with it?"},
                "element": {
                    "type": "plain_text_input",
                    "action_id": REASON_ACTION,
                    "multiline": True,
                    "max_length": 500,
                    "placeholder": {"type": "plain_text", "text": "Wrong, offensive, misleading…"},
                },
            },
        ],
    }
