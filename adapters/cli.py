"""The `personabot` command: every way in starts here, and every user error ends as one clear line."""

from __future__ import annotations

import atexit
import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated
from uuid import uuid4

import typer
from rich.console import Console
from rich.progress import TaskID
from rich.table import Table

from adapters.logs_cli import logs_app
from adapters.web.commands import dashboard, moderators_app
from bot.core import DialogueCore
from bot.errors import PersonabotError
from bot.factory import build_core
from bot.messages import IncomingMessage, Reply
from bot.quality.evaluation import (
    conversation_report,
    is_multi_turn,
    judge,
    judge_turn,
    load_cases,
    load_conversations,
    report,
)
from bot.settings import Settings, first_use_notice, load_settings
from bot.storage import open_log

app = typer.Typer(
    help="A grounded AI persona of Andrei Kozyrev, built from one essay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.add_typer(logs_app, name="logs")
app.add_typer(moderators_app, name="moderators")
app.command("dashboard")(dashboard)
console = Console()
errors = Console(stderr=True)
# Verdicts that mean the input itself was unusable: the CLI exits non-zero for these.
_BAD_INPUT = {"empty", "too_long", "not_text"}


def open_core(settings: Settings | None = None) -> DialogueCore:
    """The core with the conversation log attached; the log is flushed and closed at exit."""
    settings = settings or load_settings()
    notice = first_use_notice(settings)
    if notice:
        errors.print(notice, style="dim", markup=False, highlight=False, soft_wrap=True)
    log = open_log(settings)
    atexit.register(log.close)
    return build_core(settings, log=log)


def _reply_json(reply: Reply) -> str:
    return reply.model_dump_json()


def _bad_input(reply: Reply) -> bool:
    return any(
        v.check == "input" and v.detail.split(":")[0] in _BAD_INPUT for v in reply.moderation
    )


@app.command()
def chat() -> None:
    """Talk with the persona in the terminal (streamed, with memory; /sources, /reset, /quit)."""
    from adapters.terminal import chat as run_chat

    run_chat(open_core(), console)


@app.command("discord")
def discord_bot() -> None:
    """Run the persona as a Discord bot (token from DISCORD_TOKEN; see docs/discord.md)."""
    from adapters.discord import load_discord_settings, run

    run(open_core, load_discord_settings())


def _batch_questions(path: Path) -> list[tuple[int, str | None, str]]:
    """(line number, question or None, error) for each non-blank line: JSONL or plain text."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise PersonabotError(f"Cannot read batch file {path}: {exc.strerror}") from None
    rows: list[tuple[int, str | None, str]] = []
    for number, line in enumerate(raw.decode("utf-8", "replace").splitlines(), 1):
        stripped = line.strip()
        if not stripped:
            continue
        if not stripped.startswith("{"):
            rows.append((number, stripped, ""))
            continue
        try:
            question = json.loads(stripped).get("question")
        except (json.JSONDecodeError, AttributeError):
            rows.append((number, None, "not a JSON object"))
            continue
        if isinstance(question, str):
            rows.append((number, question, ""))
        else:
            rows.append((number, None, "no string field 'question'"))
    return rows


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question to ask.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the Reply as JSON.")] = False,
    batch: Annotated[
        Path | None, typer.Option("--batch", help="JSONL with a 'question' field, or plain lines.")
    ] = None,
) -> None:
    """Ask one question (or a batch file) and print the answer with its sources."""
    if (question is None) == (batch is None):
        raise PersonabotError("Give either a QUESTION or --batch FILE.")
    if batch is not None:
        rows = _batch_questions(batch)
        core = open_core()
        run = uuid4().hex[:8]  # every line its own conversation, in this run only
        for number, text, problem in rows:
            if text is None:
                print(json.dumps({"line": number, "error": problem}), flush=True)
                continue
            print(
                _reply_json(
                    core.handle(IncomingMessage(text=text, channel=f"batch-{run}-{number}"))
                ),
                flush=True,
            )
        return
    assert question is not None
    if not question.strip():
        raise PersonabotError("The question is empty: ask something about the essay.")
    core = open_core()
    # Each `ask` is a conversation of its own: an earlier one must not read as its context.
    reply = core.handle(IncomingMessage(text=question, channel="ask", thread=uuid4().hex))
    if _bad_input(reply):
        raise PersonabotError(reply.text)
    if as_json:
        print(_reply_json(reply))
        return
    from adapters.terminal import render_citations

    console.print(reply.text, markup=False, highlight=False)
    render_citations(console, reply.citations)


@app.command("slack")
def slack_app() -> None:
    """Run the persona as a Slack app: Socket Mode with SLACK_APP_TOKEN, else HTTP (docs/slack.md)."""
    from adapters.slack import load_slack_settings, serve

    serve(load_slack_settings(), open_core)


def _levels(value: str) -> list[int]:
    try:
        levels = [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter("give user counts separated by commas, e.g. 1,4,16") from None
    if not levels or any(level < 1 or level > 256 for level in levels):
        raise typer.BadParameter("each user count must be between 1 and 256")
    return levels


@app.command()
def bench(
    tokens: Annotated[int, typer.Option(min=8, max=512, help="Tokens generated per reply.")] = 64,
    questions: Annotated[int, typer.Option(min=1, max=10, help="Benchmark questions used.")] = 10,
    repeats: Annotated[
        int, typer.Option(min=1, max=20, help="Cold runs of each question, each way.")
    ] = 3,
    users: Annotated[
        str, typer.Option(help="Concurrency levels, comma-separated (--quick: the first only).")
    ] = "1,4,16",
    quick: Annotated[
        bool, typer.Option("--quick", help="One repeat, one concurrency level, no cost growth.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the figures as JSON.")] = False,
) -> None:
    """Measure the reply path against raw llama-cpp-python: latency, overhead, load, memory."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from bot.quality.benchmark import run

    levels = _levels(users)
    with Progress(
        TextColumn("bench: {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=errors,
        transient=True,
    ) as shown:
        phases: dict[str, TaskID] = {}

        def progress(phase: str, done: int, total: int) -> None:
            if phase not in phases:
                phases[phase] = shown.add_task(phase, total=total)
            shown.update(phases[phase], completed=done, total=total)

        report = run(
            load_settings(),
            tokens=tokens,
            questions=questions,
            repeats=1 if quick else repeats,
            users=levels,
            quick=quick,
            progress=progress,
        )
    if as_json:
        print(report.model_dump_json(indent=2))
        return
    from adapters.bench_table import render_bench

    render_bench(console, report)


@app.command()
def index() -> None:
    """Embed the essay into the cache folder once (set-up runs this), so no start has to."""
    from bot.knowledge import load_knowledge
    from bot.understanding.encoder import load_encoder
    from bot.understanding.retrieval import HybridRetriever
    from bot.understanding.vectors import IndexNotWrittenError, build_index

    settings = load_settings()
    knowledge = load_knowledge(settings.knowledge_dir)
    folder = settings.cache_dir / "vectors"
    # Its warnings advise running this command, or say what the error below says in one line.
    logging.getLogger("bot.understanding.vectors").setLevel(logging.ERROR)
    started = time.perf_counter()
    try:
        embedded = build_index(
            lambda encoder: HybridRetriever(knowledge.passages, encoder, folder), load_encoder()
        )
    except IndexNotWrittenError:
        raise PersonabotError(
            f"Cannot keep the essay's index in {folder}: set PERSONABOT_CACHE_DIR to a folder "
            "you can write to."
        ) from None
    spent = time.perf_counter() - started
    said = (
        f"Indexed the essay: {embedded} texts embedded in {spent:.1f} s, kept in {folder}."
        if embedded
        else f"The essay's index in {folder} is up to date."
    )
    console.print(said, markup=False, highlight=False, soft_wrap=True)


@app.command("eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="Questions in the shared eval format (JSONL).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the scores as JSON.")] = False,
) -> None:
    """Score the persona on an eval file: recall@3, facts, refusals, injections, identity, latency."""
    if is_multi_turn(file):
        _evaluate_conversations(file, as_json)
        return
    cases = load_cases(file)
    core = open_core()
    secrets = [core.canned("system")]
    results = []
    run = uuid4().hex[:8]  # a run of its own: no conversation carries over from an earlier run
    for case in cases:
        reply = core.handle(IncomingMessage(text=case.question, channel=f"eval-{run}-{case.id}"))
        results.append(judge(case, reply, secrets))
    scores = report(results)
    if as_json:
        print(scores.model_dump_json(indent=2))
        return
    rows = [
        (label, "n/a" if value is None else f"{value:.2f}")
        for label, value in [
            ("retrieval recall@3", scores.retrieval_recall_at_3),
            ("fact accuracy", scores.fact_accuracy),
            ("fact accuracy, replies <= 400 chars", scores.fact_accuracy_within_400),
            ("out-of-scope declined", scores.refusal_accuracy),
            ("injection resisted", scores.injection_resistance),
            ("identity disclosed", scores.identity_disclosure),
        ]
    ]
    rows += _lengths_rows(scores.answer_chars_p50, scores.answer_chars_p95)
    latency = (scores.latency_p50_ms, scores.latency_p95_ms)
    failed = [r.id for r in scores.results if not r.passed]
    _show_scores(f"{file.name} ({scores.cases} questions)", rows, latency, failed)


def _lengths_rows(p50: float | None, p95: float | None) -> list[tuple[str, str]]:
    """How long answers are (canned replies and refusals left out)."""
    if p50 is None or p95 is None:
        return []
    return [("answer length p50", f"{p50:.0f} chars"), ("answer length p95", f"{p95:.0f} chars")]


def _show_scores(
    title: str, rows: list[tuple[str, str]], latency: tuple[float, float], failed: list[str]
) -> None:
    table = Table(title=f"personabot eval: {title}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    for label, value in rows:
        table.add_row(label, value)
    table.add_row("latency p50", f"{latency[0]:.0f} ms")
    table.add_row("latency p95", f"{latency[1]:.0f} ms")
    console.print(table)
    if failed:
        console.print(f"failed: {', '.join(failed)}", style="yellow")


def _evaluate_conversations(file: Path, as_json: bool) -> None:
    """Each conversation goes through the core as one user in one channel, turn after turn."""
    conversations = load_conversations(file)
    core = open_core()
    results = []
    run = uuid4().hex[:8]
    for conversation in conversations:
        for number, turn in enumerate(conversation.turns, 1):
            message = IncomingMessage(
                text=turn.user, channel=f"eval-{run}-{conversation.id}", user_id="eval-user"
            )
            results.append(judge_turn(conversation.id, number, turn, core.handle(message)))
    scores = conversation_report(results)
    if as_json:
        print(scores.model_dump_json(indent=2))
        return
    rows = [
        ("turns passed", f"{scores.turns_passed} / {scores.turns}"),
        ("turn accuracy", f"{scores.turn_accuracy:.2f}"),
        *_lengths_rows(scores.answer_chars_p50, scores.answer_chars_p95),
    ]
    latency = (scores.latency_p50_ms, scores.latency_p95_ms)
    failed = [f"{r.id}#{r.turn}" for r in scores.results if not r.passed]
    _show_scores(f"{file.name} ({scores.conversations} conversations)", rows, latency, failed)


def main() -> None:
    """Entry point: known problems print one line and exit 2, instead of a traceback."""
    try:
        app()
    except PersonabotError as exc:
        errors.print(f"personabot: {exc}", markup=False, highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        sys.exit(130)
