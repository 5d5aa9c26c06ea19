"""Scripted stand-ins for the core's protocols: tests decide what the model says and see what is logged."""

from __future__ import annotations

from collections.abc import Callable

from bot.answering.generation import Generation, GenerationRequest, TokenSink
from bot.messages import Exchange


class ScriptedGenerator:
    """Answers from a script (a fixed list, or a function of the request) and records every request."""

    model_id = "scripted-fake"

    def __init__(
        self, script: list[str] | Callable[[GenerationRequest], str] | None = None
    ) -> None:
        self._script = script if script is not None else []
        self.requests: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        self.requests.append(request)
        if callable(self._script):
            text = self._script(request)
        else:
            text = self._script.pop(0) if self._script else ""
        for word in text.split(" "):
            if on_token:
                on_token(word + " ")
        return Generation(
            text=text,
            prompt=f"{request.system}\n{request.user}",
            prompt_tokens=len(request.user.split()),
            completion_tokens=len(text.split()),
            ttft_ms=1.0,
            total_ms=2.0,
            options={"max_tokens": request.max_tokens},
        )


class MemoryLog:
    """A ConversationLog that keeps exchanges in a list, optionally failing to test resilience."""

    def __init__(self, fail: bool = False) -> None:
        self.exchanges: list[Exchange] = []
        self.fail = fail

    def record(self, exchange: Exchange) -> None:
        if self.fail:
            raise OSError("disk on fire")
        self.exchanges.append(exchange)
