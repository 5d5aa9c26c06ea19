"""`personabot bench`: the whole reply path against raw llama-cpp-python, in one process and sitting.

Like is compared with like: every generation is capped at the same token count with end-of-text
suppressed, so both sides produce exactly as many tokens; both are warmed up; each question is
asked several times from a cold cache, personabot and raw in a random order each time; ratios
are per question, with their spread. The overhead that matters is the time spent outside the
model (`total - generation`), reported on its own. The JSON shape is documented in
docs/performance.md and versioned by `schema_version`.
"""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

from pydantic import BaseModel

from bot.answering.generation import Generation, GenerationRequest, LlamaGenerator, TokenSink
from bot.core import DialogueCore
from bot.errors import PersonabotError
from bot.factory import build_core
from bot.messages import Exchange, IncomingMessage, Reply, ReplyKind
from bot.quality.evaluation import percentile
from bot.serving.inference import InferenceQueue
from bot.settings import Settings

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCHEMA_VERSION = 4
# Longer than any generation of the bench's fixed length takes.
_COMPARED_DEADLINE_S = 600.0
# Replies that went through retrieval and answerability (canned ones stop at the input check).
_RETRIEVED = {ReplyKind.ANSWER, ReplyKind.NOT_DIRECT, ReplyKind.OUT_OF_SCOPE}
# Progress callbacks get (phase, steps done, steps in the phase).
Progress = Callable[[str, int, int], None]


class Spread(BaseModel):
    """Milliseconds (or any unit the key names): median, 95th percentile, worst, sample size."""

    p50: float
    p95: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Spread:
        return cls(
            p50=round(percentile(values, 0.50), 1),
            p95=round(percentile(values, 0.95), 1),
            max=round(max(values, default=0.0), 1),
            n=len(values),
        )


class Ratio(BaseModel):
    """personabot / raw over questions: the median question, and the best and worst ones."""

    median: float
    min: float
    max: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Ratio:
        return cls(
            median=round(statistics.median(values), 3) if values else 0.0,
            min=round(min(values, default=0.0), 3),
            max=round(max(values, default=0.0), 3),
            n=len(values),
        )


class QuestionComparison(BaseModel):
    """One question asked `repeats` times each way from a cold cache; medians over the repeats."""

    question: str
    repeats: int
    personabot_ttft_ms: float
    raw_ttft_ms: float
    personabot_total_ms: float
    raw_total_ms: float
    outside_model_ms: float
    ratio_ttft: float
    ratio_total: float
    # The spread of the repeat-by-repeat total ratios (each personabot run over its raw partner).
    ratio_total_min: float
    ratio_total_max: float


class Concurrency(BaseModel):
    users: int
    requests: int
    failed: int
    past_deadline: int
    answered_by_model: int
    direct_answers: int
    throughput_per_min: float
    latency_ms: Spread
    first_visible_ms: Spread


class Growth(BaseModel):
    factor: str
    value: int
    prompt_tokens: int
    ttft_ms: float


class BenchReport(BaseModel):
    schema_version: int = SCHEMA_VERSION
    date: str
    cpu: str
    cores: int
    load_average_1m: float
    model: str
    tokens_per_reply: int
    repeats: int
    quick: bool
    startup_ms: float
    startup_rss_mb: float
    startup_unindexed_ms: float | None
    startup_unindexed_rss_mb: float | None
    personabot_ttft_ms: Spread
    personabot_total_ms: Spread
    raw_ttft_ms: Spread
    raw_total_ms: Spread
    first_visible_ms: Spread
    outside_model_ms: Spread
    overhead_ttft: Ratio
    overhead_total: Ratio
    pairs_excluded: int
    per_question: list[QuestionComparison]
    answers: int
    answered_by_model: int
    retrieval_ms: Spread
    warm_ttft_ms: Spread | None
    warm_total_ms: Spread | None
    follow_up_ttft_ms: Spread | None
    follow_up_same_passages_ttft_ms: Spread | None
    follow_ups_reusing_passages: int
    logging_ms: Spread
    refusal_ms: Spread
    concurrency: list[Concurrency]
    default_model_adds: bool
    default_total_ms: Spread
    default_concurrency: list[Concurrency]
    growth: list[Growth]
    peak_rss_mb: float


class _FirstToken:
    """Wraps the generator to force fixed-length output, note when the first token appears, and
    know whether a generation is still running (the core gives up waiting at its deadline, but
    the model thread finishes its step; the raw baseline must not share the context with it)."""

    def __init__(self, inner: LlamaGenerator) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.first_token_at: float | None = None
        self._running = 0
        self._idle = threading.Condition()

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        self.first_token_at = None

        def note(piece: str) -> None:
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            if on_token:
                on_token(piece)

        with self._idle:
            self._running += 1
        try:
            return self.inner.generate(replace(request, fixed_length=True), note)
        finally:
            with self._idle:
                self._running -= 1
                self._idle.notify_all()

    def wait_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._running == 0)


@dataclass
class _Run:
    """One personabot turn as the bench saw it."""

    ttft_ms: float
    total_ms: float
    first_visible_ms: float
    exchange: Exchange

    @property
    def reply(self) -> Reply:
        return self.exchange.reply

    @property
    def outside_model_ms(self) -> float:
        return self.reply.timings.total_ms - self.reply.timings.generation_ms


def cpu_model() -> str:
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
    return IncomingMessage(text=text, channel="bench", thread=conversation, user_id=conversation)


class Bench:
    """Holds one loaded model and runs each measurement against it."""

    def __init__(self, settings: Settings, tokens: int, log_dir: Path) -> None:
        from bot.storage import open_log

        self.tokens = tokens
        # The model path is what is compared with raw llama-cpp-python, so the model's addition
        # is on whatever the default; `default_core` is the path as configured, measured beside it.
        scratch = {"max_tokens": tokens, "data_dir": log_dir, "database_url": None}
        self.settings = settings.model_copy(update={**scratch, "model_adds": True})
        self.log = open_log(self.settings)
        self.core = build_core(self.settings, log=self.log)
        if not isinstance(self.core.generator, LlamaGenerator):
            raise PersonabotError("personabot bench measures the in-process model only.")
        self.timer = _FirstToken(self.core.generator)
        self.core.generator = self.timer
        self.default_core = build_core(
            settings.model_copy(update=scratch), generator=self.timer, log=self.log
        )
        self.llama = self.timer.inner.llama
        self._turns = 0
        # Retrieval + answerability of each text the first time this process sees it: a text
        # asked again finds its vector cached, so repeats would hide the encoder's time.
        self._seen: set[str] = set()
        self.first_retrieval_ms: list[float] = []

    def close(self) -> None:
        self.timer.wait_idle()
        self.log.close()

    def turn(self, text: str, conversation: str | None = None, cold: bool = True) -> _Run:
        """One personabot turn (a new conversation unless named), timed from the call."""
        if conversation is None:
            self._turns += 1
            conversation = f"bench-{self._turns}"
        self.timer.wait_idle()
        if cold:
            self.llama.reset()
        first_visible: list[float] = []

        def seen(_: str) -> None:
            if not first_visible:
                first_visible.append(time.perf_counter())

        self.timer.first_token_at = None
        started = time.perf_counter()
        # No reply deadline here: every generation writes its fixed tokens, as the raw run does;
        # the concurrency levels keep the configured one.
        unbounded = time.monotonic() + _COMPARED_DEADLINE_S
        exchange = self.core.respond(_message(text, conversation), seen, unbounded)
        total = (time.perf_counter() - started) * 1000
        if text not in self._seen and exchange.reply.kind in _RETRIEVED:
            self.first_retrieval_ms.append(exchange.reply.timings.retrieval_ms)
        self._seen.add(text)
        first = self.timer.first_token_at
        return _Run(
            ttft_ms=(first - started) * 1000 if first else total,
            total_ms=total,
            first_visible_ms=(first_visible[0] - started) * 1000 if first_visible else total,
            exchange=exchange,
        )

    def raw(self, prompt: str) -> tuple[float, float, int]:
        """The same prompt straight into llama-cpp-python, from a cold cache."""
        self.timer.wait_idle()
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

    def compare(
        self, questions: Sequence[str], repeats: int, progress: Progress, seed: int = 7
    ) -> tuple[list[QuestionComparison], list[_Run], list[tuple[float, float]], int]:
        """Warms both paths, then asks each question `repeats` times each way, in a random order
        per pair and a shuffled question order per round. Returns the per-question comparison, every
        personabot run, every raw (ttft, total), and how many pairs were not comparable."""
        rng = random.Random(seed)
        prompts: dict[str, str] = {}
        for done, question in enumerate(questions):
            progress("warm-up: personabot and raw on every question", done, len(questions))
            prompts[question] = self.turn(question).exchange.trace.prompt
            if prompts[question]:
                self.raw(prompts[question])
        progress("warm-up: personabot and raw on every question", len(questions), len(questions))
        paired: dict[str, list[tuple[_Run, tuple[float, float] | None]]] = {
            q: [] for q in questions
        }
        steps = repeats * len(questions)
        done = 0
        for _ in range(repeats):
            for question in rng.sample(list(questions), len(questions)):
                progress("cold cache: personabot and raw, interleaved", done, steps)
                done += 1
                paired[question].append(self._pair(question, prompts[question], rng.random() < 0.5))
        progress("cold cache: personabot and raw, interleaved", steps, steps)
        rows = [
            _comparison(q, [(run, raw) for run, raw in paired[q] if raw is not None])
            for q in questions
            if any(raw is not None for _, raw in paired[q])
        ]
        every_run = [run for q in questions for run, _ in paired[q]]
        every_raw = [raw for q in questions for _, raw in paired[q] if raw is not None]
        return rows, every_run, every_raw, len(every_run) - len(every_raw)

    def _pair(
        self, question: str, prompt: str, raw_first: bool
    ) -> tuple[_Run, tuple[float, float] | None]:
        """One personabot run and one raw run on its prompt; raw is None when the two did not
        generate the same number of tokens (or personabot did not call the model at all)."""
        if raw_first and prompt:
            r_ttft, r_total, count = self.raw(prompt)
            mine = self.turn(question)
        else:
            mine = self.turn(question)
            prompt = mine.exchange.trace.prompt
            if not prompt:
                return mine, None
            r_ttft, r_total, count = self.raw(prompt)
        same = count == mine.reply.tokens.completion and prompt == mine.exchange.trace.prompt
        return mine, ((r_ttft, r_total) if same and count else None)

    def warm(self, pairs: Sequence[dict[str, str]], progress: Progress) -> dict[str, list[float]]:
        """Questions in turn (new passages each time), each followed by its follow-up; the
        follow-ups' first-token times are also kept apart for those shown the same passages."""
        found: dict[str, list[float]] = {"ttft": [], "total": [], "follow_up": [], "same": []}
        for number, pair in enumerate(pairs):
            progress("warm cache: a question, then its follow-up", number, len(pairs))
            conversation = f"warm-{number}"
            first = self.turn(pair["question"], conversation, cold=False)
            found["ttft"].append(first.ttft_ms)
            found["total"].append(first.total_ms)
            second = self.turn(pair["follow_up"], conversation, cold=False)
            found["follow_up"].append(second.ttft_ms)
            if _same_prompt_passages(first.exchange, second.exchange):
                found["same"].append(second.ttft_ms)
        progress("warm cache: a question, then its follow-up", len(pairs), len(pairs))
        return found

    def repeat(self, action: Callable[[], object], times: int) -> list[float]:
        spent = []
        for _ in range(times):
            started = time.perf_counter()
            action()
            spent.append((time.perf_counter() - started) * 1000)
        return spent

    def default_path(self, questions: Sequence[str], repeats: int) -> list[float]:
        """The full reply as configured (by default without the model's addition), each question
        in a new conversation."""
        spent = []
        for round_ in range(repeats):
            for number, question in enumerate(questions):
                self.timer.wait_idle()
                message = _message(question, f"default-{round_}-{number}")
                started = time.perf_counter()
                self.default_core.respond(message)
                spent.append((time.perf_counter() - started) * 1000)
        return spent

    def concurrency(
        self, questions: Sequence[str], users: int, core: DialogueCore | None = None
    ) -> Concurrency:
        """`users` people ask at the same moment through the shared inference queue (of the
        model path unless another core is given)."""
        answering = core or self.core

        async def crowd() -> tuple[list[tuple[float, float, Exchange] | BaseException], float]:
            queue = InferenceQueue(answering, max_waiting=max(64, users))
            started = time.perf_counter()

            async def one(number: int) -> tuple[float, float, Exchange]:
                sent = time.perf_counter()
                visible: list[float] = []

                def seen(_: str) -> None:
                    if not visible:
                        visible.append(time.perf_counter())

                text = questions[number % len(questions)]
                message = _message(text, f"crowd-{id(answering)}-{users}-{number}")
                exchange = await queue.respond(message, seen)
                done = time.perf_counter()
                return (done - sent) * 1000, ((visible or [done])[0] - sent) * 1000, exchange

            results = await asyncio.gather(*(one(n) for n in range(users)), return_exceptions=True)
            wall = time.perf_counter() - started
            queue.close()
            return list(results), wall

        self.timer.wait_idle()
        self.llama.reset()
        results, wall = asyncio.run(crowd())
        self.timer.wait_idle()
        done = [r for r in results if isinstance(r, tuple)]
        exchanges = [e for _, _, e in done]
        limit_ms = (answering.settings.reply_deadline_s + 2.0) * 1000
        return Concurrency(
            users=users,
            requests=len(results),
            failed=len(results) - len(done),
            past_deadline=sum(latency > limit_ms for latency, _, _ in done),
            answered_by_model=sum(e.reply.model_sentences > 0 for e in exchanges),
            direct_answers=sum(not e.reply.refused and bool(e.reply.citations) for e in exchanges),
            throughput_per_min=round(len(done) / wall * 60, 1),
            latency_ms=Spread.of([latency for latency, _, _ in done]),
            first_visible_ms=Spread.of([visible for _, visible, _ in done]),
        )

    def growth(self, question: str, progress: Progress) -> list[Growth]:
        """Cold time to first token as the prompt grows along each axis."""
        rows: list[Growth] = []
        base = self.core
        steps = 10
        for passages in (1, 2, 3, 4):
            progress("cost growth", len(rows), steps)
            self.core = build_core(
                self.settings.model_copy(update={"passages_in_prompt": passages}),
                generator=self.timer,
            )
            rows.append(self._grown("passages in prompt", passages, question, f"grow-p{passages}"))
        self.core = base
        for words in (10, 60, 200):
            progress("cost growth", len(rows), steps)
            padding = " ".join(["please"] * max(0, words - len(question.split())))
            text = f"{padding} {question}".strip()
            rows.append(self._grown("question words", words, text, f"grow-q{words}"))
        for turns in (1, 3, 6):
            progress("cost growth", len(rows), steps)
            conversation = f"grow-t{turns}"
            for _ in range(turns - 1):
                self.turn(question, conversation, cold=False)
            rows.append(self._grown("conversation turns", turns, question, conversation))
        progress("cost growth", steps, steps)
        return rows

    def _grown(self, factor: str, value: int, text: str, conversation: str) -> Growth:
        run = self.turn(text, conversation)
        return Growth(
            factor=factor,
            value=value,
            prompt_tokens=run.reply.tokens.prompt,
            ttft_ms=round(run.ttft_ms, 1),
        )


def _comparison(
    question: str, pairs: Sequence[tuple[_Run, tuple[float, float]]]
) -> QuestionComparison:
    """Medians over the comparable repeats of one question (runs without a raw partner are left
    out here, and counted in `pairs_excluded`)."""
    runs = [run for run, _ in pairs]
    mine_ttft = statistics.median(r.ttft_ms for r in runs)
    mine_total = statistics.median(r.total_ms for r in runs)
    raw_ttft = statistics.median(t for _, (t, _) in pairs)
    raw_total = statistics.median(t for _, (_, t) in pairs)
    by_repeat = [run.total_ms / total for run, (_, total) in pairs]
    return QuestionComparison(
        question=question,
        repeats=len(pairs),
        personabot_ttft_ms=round(mine_ttft, 1),
        raw_ttft_ms=round(raw_ttft, 1),
        personabot_total_ms=round(mine_total, 1),
        raw_total_ms=round(raw_total, 1),
        outside_model_ms=round(statistics.median(r.outside_model_ms for r in runs), 1),
        ratio_ttft=round(mine_ttft / raw_ttft, 3),
        ratio_total=round(mine_total / raw_total, 3),
        ratio_total_min=round(min(by_repeat), 3),
        ratio_total_max=round(max(by_repeat), 3),
    )


def _same_prompt_passages(first: Exchange, second: Exchange) -> bool:
    """True when both prompts list the same passages, i.e. the second reuses the cached prefix."""

    def shown(exchange: Exchange) -> str:
        return exchange.trace.prompt.split("Question:")[0].split("Earlier question:")[0]

    return bool(first.trace.prompt) and shown(first) == shown(second)


# Peak memory from VmHWM, this process's own high-water mark: Linux carries the parent's peak
# into ru_maxrss across the spawn, so it would report the bench's memory (the loaded model).
_STARTUP_PROBE = """
import json, resource, sys, time
started = time.perf_counter()
from pathlib import Path
from bot.factory import build_core
from bot.settings import load_settings
build_core(load_settings(data_dir=Path(sys.argv[1])))
ms = (time.perf_counter() - started) * 1000
try:
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except (OSError, StopIteration):
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"ms": ms, "rss_mb": kb / 1024}))
"""


def measure_startup(data_dir: Path, cache_dir: Path) -> tuple[float, float]:
    """A new interpreter builds the core from settings (imports, knowledge, the essay's vectors
    from `cache_dir` or computed into it, model load): (milliseconds from the first import to a
    core ready to answer, peak RSS in MB)."""
    done = subprocess.run(
        [sys.executable, "-c", _STARTUP_PROBE, str(data_dir)],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PERSONABOT_CACHE_DIR": str(cache_dir)},
        timeout=300,
    )
    try:
        found = json.loads(done.stdout.strip().splitlines()[-1])
    except (IndexError, json.JSONDecodeError):
        raise PersonabotError(f"start-up probe failed: {done.stderr.strip()[-300:]}") from None
    return round(float(found["ms"]), 1), round(float(found["rss_mb"]), 1)


def run(
    settings: Settings,
    tokens: int = 64,
    questions: int = 10,
    repeats: int = 3,
    users: Sequence[int] = (1, 4, 16),
    quick: bool = False,
    progress: Progress = lambda *_: None,
) -> BenchReport:
    """Every figure of the report. `quick` keeps the comparison, the start-up with the essay's
    index and the first listed concurrency level, and skips the start-up without the index, warm
    follow-ups and cost growth."""
    pairs = _load(BENCHMARKS / "questions.jsonl")[:questions]
    refusals = [row["question"] for row in _load(BENCHMARKS / "out_of_scope.jsonl")]
    asked = [pair["question"] for pair in pairs]
    levels = list(users[:1]) if quick else list(users)
    started_at = datetime.now(UTC)
    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="personabot-bench-") as scratch:
        progress("loading the model", 0, 1)
        bench = Bench(settings, tokens, Path(scratch))
        progress("loading the model", 1, 1)
        try:
            # With the essay's index (every start after set-up's `personabot index`; the bench's
            # own core has just made sure the cache holds it), then with an empty cache (a start
            # that must build the index: set-up skipped, or the cache folder cleared).
            starting = "start-up: new processes build the core, with and without the index"
            progress(starting, 0, 2)
            startup_ms, startup_rss = measure_startup(Path(scratch), bench.settings.cache_dir)
            progress(starting, 1, 2)
            unindexed = None if quick else measure_startup(Path(scratch), Path(scratch) / "cache")
            progress(starting, 2, 2)
            rows, runs, raws, excluded = bench.compare(asked, repeats, progress)
            warm = None if quick else bench.warm(pairs, progress)
            progress("logging and refusal paths", 0, 1)
            sample = runs[0].exchange
            logging = bench.repeat(
                lambda: bench.log.record(sample.model_copy(update={"id": _fresh_id()})), 50
            )
            refused = [bench.turn(q, cold=False) for q in refusals for _ in range(5)]
            # Questions of the sets only: cost growth's padded ones are not what people ask.
            first_asks = list(bench.first_retrieval_ms)
            progress("logging and refusal paths", 1, 1)
            crowds = []
            for number, count in enumerate(levels):
                progress("concurrent users through the inference queue", number, len(levels))
                crowds.append(bench.concurrency(asked, count))
            progress("concurrent users through the inference queue", len(levels), len(levels))
            as_configured = "the reply as configured: alone, then concurrent users"
            progress(as_configured, 0, 1)
            default_total = bench.default_path(asked, repeats)
            default_crowds = [bench.concurrency(asked, n, bench.default_core) for n in levels]
            progress(as_configured, 1, 1)
            growth = [] if quick else bench.growth(asked[0], progress)
        finally:
            bench.close()
    answers = [r for r in runs if not r.reply.refused]
    paired = [r for r in runs if r.reply.tokens.completion]

    def spread(key: str) -> Spread | None:
        return Spread.of(warm[key]) if warm is not None else None

    return BenchReport(
        date=started_at.isoformat(timespec="seconds"),
        cpu=cpu_model(),
        cores=len(os.sched_getaffinity(0)),
        load_average_1m=round(load, 2),
        model=bench.timer.model_id,
        tokens_per_reply=tokens,
        repeats=repeats,
        quick=quick,
        startup_ms=startup_ms,
        startup_rss_mb=startup_rss,
        startup_unindexed_ms=unindexed[0] if unindexed else None,
        startup_unindexed_rss_mb=unindexed[1] if unindexed else None,
        personabot_ttft_ms=Spread.of([r.ttft_ms for r in paired]),
        personabot_total_ms=Spread.of([r.total_ms for r in paired]),
        raw_ttft_ms=Spread.of([t for t, _ in raws]),
        raw_total_ms=Spread.of([t for _, t in raws]),
        first_visible_ms=Spread.of([r.first_visible_ms for r in runs]),
        outside_model_ms=Spread.of([r.outside_model_ms for r in paired]),
        overhead_ttft=Ratio.of([row.ratio_ttft for row in rows]),
        overhead_total=Ratio.of([row.ratio_total for row in rows]),
        pairs_excluded=excluded,
        per_question=rows,
        answers=len(answers),
        answered_by_model=sum(r.reply.model_sentences > 0 for r in answers),
        retrieval_ms=Spread.of(first_asks),
        warm_ttft_ms=spread("ttft"),
        warm_total_ms=spread("total"),
        follow_up_ttft_ms=spread("follow_up"),
        follow_up_same_passages_ttft_ms=spread("same"),
        follow_ups_reusing_passages=len(warm["same"]) if warm is not None else 0,
        logging_ms=Spread.of(logging),
        refusal_ms=Spread.of([r.total_ms for r in refused]),
        concurrency=crowds,
        default_model_adds=bench.default_core.settings.uses_model,
        default_total_ms=Spread.of(default_total),
        default_concurrency=default_crowds,
        growth=growth,
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    )


def _fresh_id() -> str:
    from uuid import uuid4

    return uuid4().hex
