"""`personabot bench`: the whole reply path against raw llama-cpp-python, in one process and sitting.

Every generation is capped at the same token count and end-of-text is suppressed, so personabot
and the raw baseline produce exactly as many tokens and their times compare like for like.
"""

from __future__ import annotations

import asyncio
import json
import platform
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from bot.answering.generation import Generation, GenerationRequest, LlamaGenerator, TokenSink
from bot.errors import PersonabotError
from bot.factory import build_core
from bot.messages import Exchange, IncomingMessage
from bot.quality.evaluation import percentile
from bot.serving.inference import InferenceQueue
from bot.settings import Settings

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


class Spread(BaseModel):
    p50_ms: float
    p95_ms: float
    n: int

    @classmethod
    def of(cls, values_ms: Sequence[float]) -> Spread:
        return cls(
            p50_ms=round(percentile(values_ms, 0.50), 1),
            p95_ms=round(percentile(values_ms, 0.95), 1),
            n=len(values_ms),
        )


class Concurrency(BaseModel):
    users: int
    requests: int
    failed: int
    past_deadline: int
    answered_by_model: int
    throughput_per_min: float
    latency: Spread


class Growth(BaseModel):
    factor: str
    value: int
    prompt_tokens: int
    ttft_ms: float


class BenchReport(BaseModel):
    cpu: str
    cores: int
    model: str
    tokens_per_reply: int
    personabot_ttft: Spread
    personabot_total: Spread
    raw_ttft: Spread
    raw_total: Spread
    overhead_ttft: float
    overhead_total: float
    warm_ttft: Spread
    warm_total: Spread
    follow_up_ttft: Spread
    follow_up_same_passages_ttft: Spread
    follow_ups_reusing_passages: int
    retrieval: Spread
    logging: Spread
    refusal: Spread
    concurrency: list[Concurrency]
    growth: list[Growth]
    peak_rss_mb: float


class _FirstToken:
    """Wraps the generator to force fixed-length output and note when the first token appears."""

    def __init__(self, inner: LlamaGenerator) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.first_token_at: float | None = None

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        self.first_token_at = None

        def note(piece: str) -> None:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            if on_token:
                on_token(piece)

        return self.inner.generate(replace(request, fixed_length=True), note)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _load(path: Path) -> list[dict[str, str]]:
    try:
        return [json.loads(line) for line in path.read_text("utf-8").splitlines() if line.strip()]
    except (OSError, json.JSONDecodeError) as exc:
        raise PersonabotError(f"Cannot read benchmark questions {path}: {exc}") from None


def _message(text: str, conversation: str) -> IncomingMessage:
    return IncomingMessage(text=text, channel="bench", user_id=conversation)


class Bench:
    """Holds one loaded model and runs each measurement against it."""

    def __init__(self, settings: Settings, tokens: int, log_dir: Path) -> None:
        from bot.storage import open_log

        self.tokens = tokens
        self.settings = settings.model_copy(
            update={"max_tokens": tokens, "data_dir": log_dir, "database_url": None}
        )
        self.log = open_log(self.settings)
        self.core = build_core(self.settings, log=self.log)
        if not isinstance(self.core.generator, LlamaGenerator):
            raise PersonabotError("personabot bench measures the in-process model only.")
        self.timer = _FirstToken(self.core.generator)
        self.core.generator = self.timer
        self.llama = self.timer.inner.llama

    def close(self) -> None:
        self.log.close()

    def _timed(
        self, message: IncomingMessage, cold: bool, deadline: float | None = None
    ) -> tuple[float, float, Exchange]:
        if cold:
            self.llama.reset()
        started = time.perf_counter()
        exchange = self.core.respond(message, deadline=deadline)
        total = (time.perf_counter() - started) * 1000
        first = self.timer.first_token_at
        ttft = (first - started) * 1000 if first else total
        return ttft, total, exchange

    def raw(self, prompt: str) -> tuple[float, float, int]:
        """The same prompt straight into llama-cpp-python, from a cold cache."""
        self.llama.reset()
        started = time.perf_counter()
        ttft = 0.0
        count = 0
        stream = self.llama.create_completion(
            prompt,
            max_tokens=self.tokens,
            temperature=self.settings.temperature,
            stop=[],
            logit_bias={self.llama.token_eos(): -1e9},
            stream=True,
        )
        for _ in cast(Iterator[dict[str, Any]], stream):
            if not count:
                ttft = (time.perf_counter() - started) * 1000
            count += 1
        return ttft, (time.perf_counter() - started) * 1000, count

    def cold(
        self, questions: Sequence[str]
    ) -> tuple[list[float], list[float], list[float], list[float]]:
        mine_ttft, mine_total, raw_ttft, raw_total = [], [], [], []
        for number, question in enumerate(questions):
            ttft, total, exchange = self._timed(_message(question, f"cold-{number}"), cold=True)
            r_ttft, r_total, count = self.raw(exchange.trace.prompt)
            if count != exchange.reply.tokens.completion:
                raise PersonabotError(
                    f"token counts differ ({count} vs {exchange.reply.tokens.completion})"
                )
            mine_ttft.append(ttft)
            mine_total.append(total)
            raw_ttft.append(r_ttft)
            raw_total.append(r_total)
        return mine_ttft, mine_total, raw_ttft, raw_total

    def warm(
        self, pairs: Sequence[dict[str, str]]
    ) -> tuple[list[float], list[float], list[float], list[float]]:
        """Questions in turn (new passages each time), each followed by its follow-up; the
        follow-ups' first-token times are also kept apart for those shown the same passages."""
        ttfts, totals, follow_ups, same_passages = [], [], [], []
        for number, pair in enumerate(pairs):
            ttft, total, first = self._timed(_message(pair["question"], f"warm-{number}"), False)
            ttfts.append(ttft)
            totals.append(total)
            f_ttft, _, second = self._timed(_message(pair["follow_up"], f"warm-{number}"), False)
            follow_ups.append(f_ttft)
            if _same_prompt_passages(first, second):
                same_passages.append(f_ttft)
        return ttfts, totals, follow_ups, same_passages

    def repeat(self, action: Callable[[], object], times: int) -> list[float]:
        spent = []
        for _ in range(times):
            started = time.perf_counter()
            action()
            spent.append((time.perf_counter() - started) * 1000)
        return spent

    def concurrency(self, questions: Sequence[str], users: int) -> Concurrency:
        """`users` people ask at the same moment through the shared inference queue."""

        async def crowd() -> tuple[list[float], list[Exchange | BaseException], float]:
            queue = InferenceQueue(self.core, max_waiting=max(64, users))
            started = time.perf_counter()

            async def one(number: int) -> tuple[float, Exchange]:
                sent = time.perf_counter()
                message = _message(questions[number % len(questions)], f"crowd-{users}-{number}")
                exchange = await queue.respond(message)
                return (time.perf_counter() - sent) * 1000, exchange

            results = await asyncio.gather(*(one(n) for n in range(users)), return_exceptions=True)
            wall = time.perf_counter() - started
            queue.close()
            latencies = [r[0] for r in results if isinstance(r, tuple)]
            outcomes = [r[1] if isinstance(r, tuple) else r for r in results]
            return latencies, outcomes, wall

        latencies, outcomes, wall = asyncio.run(crowd())
        exchanges = [o for o in outcomes if isinstance(o, Exchange)]
        limit_ms = (self.settings.generation_deadline_s + 2.0) * 1000
        return Concurrency(
            users=users,
            requests=len(outcomes),
            failed=len(outcomes) - len(exchanges),
            past_deadline=sum(latency > limit_ms for latency in latencies),
            answered_by_model=sum(e.reply.tokens.completion > 0 for e in exchanges),
            throughput_per_min=round(len(exchanges) / wall * 60, 1),
            latency=Spread.of(latencies),
        )

    def growth(self, question: str) -> list[Growth]:
        """Cold time to first token as the prompt grows along each axis."""
        rows = []
        base = self.core
        for passages in (1, 2, 3, 4):
            self.core = build_core(
                self.settings.model_copy(update={"passages_in_prompt": passages}),
                generator=self.timer,
            )
            rows.append(self._grown("passages in prompt", passages, question, f"grow-p{passages}"))
        self.core = base
        for words in (10, 60, 200):
            padding = " ".join(["please"] * max(0, words - len(question.split())))
            text = f"{padding} {question}".strip()
            rows.append(self._grown("question words", words, text, f"grow-q{words}"))
        for turns in (1, 3, 6):
            conversation = f"grow-t{turns}"
            for _ in range(turns - 1):
                self.core.respond(_message(question, conversation))
            rows.append(self._grown("conversation turns", turns, question, conversation))
        return rows

    def _grown(self, factor: str, value: int, text: str, conversation: str) -> Growth:
        ttft, _, exchange = self._timed(_message(text, conversation), cold=True)
        return Growth(
            factor=factor,
            value=value,
            prompt_tokens=exchange.reply.tokens.prompt,
            ttft_ms=round(ttft, 1),
        )


def _same_prompt_passages(first: Exchange, second: Exchange) -> bool:
    """True when both prompts list the same passages, i.e. the second reuses the cached prefix."""

    def shown(exchange: Exchange) -> str:
        return exchange.trace.prompt.split("Question:")[0].split("Earlier question:")[0]

    return bool(first.trace.prompt) and shown(first) == shown(second)


def run(
    settings: Settings,
    tokens: int = 64,
    questions: int = 10,
    users: Sequence[int] = (1, 4, 16),
    progress: Callable[[str], None] = lambda _: None,
) -> BenchReport:
    pairs = _load(BENCHMARKS / "questions.jsonl")[:questions]
    refusals = [row["question"] for row in _load(BENCHMARKS / "out_of_scope.jsonl")]
    asked = [pair["question"] for pair in pairs]
    with tempfile.TemporaryDirectory(prefix="personabot-bench-") as scratch:
        bench = Bench(settings, tokens, Path(scratch))
        try:
            progress("warming up")
            bench.core.respond(_message(asked[0], "warm-up"))
            progress("cold: personabot and raw llama-cpp-python on the same prompts")
            mine_ttft, mine_total, raw_ttft, raw_total = bench.cold(asked)
            progress("warm: new passages each turn, then a follow-up")
            warm_ttft, warm_total, follow_ttft, reused = bench.warm(pairs)
            progress("retrieval, logging and refusal paths")
            retrieval = [
                ms for q in asked for ms in bench.repeat(partial(bench.core.retriever.search, q), 5)
            ]
            sample = bench.core.respond(_message(asked[0], "log-sample"))
            logging = bench.repeat(
                lambda: bench.log.record(sample.model_copy(update={"id": _fresh_id()})), 50
            )
            refusal = [
                ms
                for q in refusals
                for ms in bench.repeat(partial(bench.core.respond, _message(q, "refusal")), 10)
            ]
            crowds = []
            for count in users:
                progress(f"{count} concurrent users")
                crowds.append(bench.concurrency(asked, count))
            progress("cost growth")
            growth = bench.growth(asked[0])
        finally:
            bench.close()
    return BenchReport(
        cpu=_cpu_model(),
        cores=_cores(),
        model=bench.timer.model_id,
        tokens_per_reply=tokens,
        personabot_ttft=Spread.of(mine_ttft),
        personabot_total=Spread.of(mine_total),
        raw_ttft=Spread.of(raw_ttft),
        raw_total=Spread.of(raw_total),
        overhead_ttft=round(statistics.median(mine_ttft) / statistics.median(raw_ttft), 3),
        overhead_total=round(statistics.median(mine_total) / statistics.median(raw_total), 3),
        warm_ttft=Spread.of(warm_ttft),
        warm_total=Spread.of(warm_total),
        follow_up_ttft=Spread.of(follow_ttft),
        follow_up_same_passages_ttft=Spread.of(reused),
        follow_ups_reusing_passages=len(reused),
        retrieval=Spread.of(retrieval),
        logging=Spread.of(logging),
        refusal=Spread.of(refusal),
        concurrency=crowds,
        growth=growth,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def _fresh_id() -> str:
    from uuid import uuid4

    return uuid4().hex


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))
