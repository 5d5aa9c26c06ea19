"""A Generator backed by any OpenAI-compatible chat-completions server (llama-server, vLLM, Ollama).

The core builds the prompt, checks grounding and logs the exchange exactly as for the in-process
model; this module only moves the two texts over HTTP, streams the answer back, and protects users
from a sick server: bounded time-outs, retries with back-off on 429/5xx, and a circuit breaker that
fails fast (GeneratorUnavailableError) so the core can answer in voice instead of waiting.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from enum import StrEnum
from typing import Any

import httpx

from bot.answering.generation import Generation, GenerationRequest, TokenSink
from bot.errors import GenerationError, GeneratorUnavailableError

logger = logging.getLogger(__name__)
RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Opens after `failures` consecutive failures; after `reset_s` lets one trial call through.

    While open every call fails at once, so a dead server costs users milliseconds, not time-outs.
    """

    def __init__(
        self, failures: int = 3, reset_s: float = 15.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = BreakerState.CLOSED
        self._trial_running = False
        self._lock = threading.Lock()

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if (
                self._state is BreakerState.OPEN
                and self._clock() - self._opened_at >= self._reset_s
            ):
                return BreakerState.HALF_OPEN
            return self._state

    def retry_in(self) -> float:
        """Seconds until the next trial call is allowed (0 when calls may go through)."""
        with self._lock:
            if self._state is not BreakerState.OPEN:
                return 0.0
            return max(0.0, self._reset_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """True when a call may go to the server; in half-open state only one trial at a time."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._state is BreakerState.OPEN:
                if self._clock() - self._opened_at < self._reset_s:
                    return False
                self._state = BreakerState.HALF_OPEN
                self._trial_running = False
            if self._trial_running:
                return False
            self._trial_running = True
            return True

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._trial_running = False
            self._state = BreakerState.CLOSED

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            self._trial_running = False
            if self._state is BreakerState.HALF_OPEN or self._failures >= self._threshold:
                self._state = BreakerState.OPEN
                self._opened_at = self._clock()


class _RetryableError(Exception):
    """One attempt failed in a way worth repeating; `wait_s` is the server's Retry-After, if any."""

    def __init__(self, reason: str, wait_s: float | None = None) -> None:
        super().__init__(reason)
        self.wait_s = wait_s


class OpenAIGenerator:
    """Streams chat completions from `{base_url}/chat/completions`; thread-safe (httpx pools connections)."""

    def __init__(
        self,
        base_url: str,
        model: str = "default",
        api_key: str | None = None,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 60.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        max_wait_s: float = 10.0,
        breaker: CircuitBreaker | None = None,
        extra_body: Mapping[str, Any] | None = None,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise GenerationError(
                f"PERSONABOT_INFERENCE_URL must start with http:// or https://, got {base_url!r}."
            )
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(read_timeout_s, connect=connect_timeout_s),
            transport=transport,
        )
        self._model = model
        self._retries = retries
        self._backoff_s = backoff_s
        self._max_wait_s = max_wait_s
        self._extra_body = dict(extra_body or {})
        self._sleep = sleep
        self.breaker = breaker or CircuitBreaker()
        self.model_id = f"openai:{model}"
        self.base_url = base_url

    def ping(self) -> bool:
        """Readiness probe: the server answers its model list (never trips the breaker)."""
        try:
            return self._client.get("models", timeout=2.0).status_code == 200
        except httpx.HTTPError:
            return False

    def close(self) -> None:
        self._client.close()

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        """Retries only while nothing has been streamed, so a user never sees a sentence twice."""
        if not self.breaker.allow():
            raise GeneratorUnavailableError(
                f"The inference server is unavailable (circuit open, retry in "
                f"{self.breaker.retry_in():.0f}s)."
            )
        body: dict[str, Any] = {
            **self._extra_body,
            "model": self._model,
            "messages": [
                {"role": "system", "content": request.system},
                {"role": "user", "content": request.user},
            ],
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
        }
        options = {k: v for k, v in body.items() if k not in {"messages", "stream"}}
        options["endpoint"] = self.base_url
        attempt = 0
        while True:
            result = Generation(text="", options=options)
            try:
                self._stream(body, request, result, on_token)
            except _RetryableError as exc:
                if attempt >= self._retries or result.completion_tokens:
                    self.breaker.failed()
                    raise GeneratorUnavailableError(
                        f"The inference server failed: {exc} (after {attempt + 1} attempts)."
                    ) from None
                wait = self._wait_before(attempt, exc.wait_s)
                logger.warning(
                    "inference attempt %d failed (%s); retrying in %.2fs", attempt + 1, exc, wait
                )
                self._sleep(wait)
                attempt += 1
                continue
            except GenerationError:
                self.breaker.succeeded()  # the server answered: it is up, the request was wrong
                raise
            self.breaker.succeeded()
            return result

    def _wait_before(self, attempt: int, retry_after_s: float | None) -> float:
        if retry_after_s is not None:
            return min(retry_after_s, self._max_wait_s)
        backoff: float = self._backoff_s * 2.0**attempt
        return min(backoff + random.uniform(0, backoff / 2), self._max_wait_s)

    def _stream(
        self,
        body: dict[str, Any],
        request: GenerationRequest,
        result: Generation,
        on_token: TokenSink | None,
    ) -> None:
        started = time.perf_counter()
        pieces: list[str] = []
        finished = False
        try:
            with self._client.stream("POST", "chat/completions", json=body) as response:
                if response.status_code in RETRYABLE_STATUS:
                    raise _RetryableError(
                        f"HTTP {response.status_code}",
                        _retry_after(response.headers.get("retry-after")),
                    )
                if response.status_code != 200:
                    response.read()
                    raise GenerationError(
                        f"The inference server refused the request: HTTP {response.status_code} "
                        f"{_error_text(response)}"
                    )
                for chunk in _events(response.iter_lines()):
                    if chunk is None:
                        finished = True
                        break
                    usage = chunk.get("usage") or {}
                    result.prompt_tokens = int(usage.get("prompt_tokens") or result.prompt_tokens)
                    choices = chunk.get("choices") or []
                    if not choices:
                        continue
                    piece = str((choices[0].get("delta") or {}).get("content") or "")
                    if choices[0].get("finish_reason"):
                        finished = True
                    if not piece:
                        continue
                    if not result.ttft_ms:
                        result.ttft_ms = (time.perf_counter() - started) * 1000
                    result.completion_tokens += 1
                    pieces.append(piece)
                    if on_token:
                        on_token(piece)
                    if (
                        request.deadline_s is not None
                        and time.perf_counter() - started > request.deadline_s
                    ):
                        result.stopped_by_deadline = True
                        finished = True
                        break
        except httpx.TransportError as exc:
            raise _RetryableError(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        if not finished:
            raise _RetryableError("the stream ended before the answer was complete")
        result.text = "".join(pieces)
        result.total_ms = (time.perf_counter() - started) * 1000


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any] | None]:
    """Server-sent events to JSON chunks; None marks the `[DONE]` sentinel."""
    for line in lines:
        if not line.startswith("data:"):
            continue  # comments, event names and keep-alive blank lines
        data = line[5:].strip()
        if data == "[DONE]":
            yield None
            return
        try:
            yield json.loads(data)
        except json.JSONDecodeError:
            raise _RetryableError("the server sent a malformed event") from None


def _retry_after(value: str | None) -> float | None:
    """Retry-After is either delta-seconds or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _error_text(response: httpx.Response) -> str:
    try:
        detail = response.json().get("error", {})
        return str(detail.get("message", detail) if isinstance(detail, dict) else detail)[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
