"""Renders `personabot bench` results as tables for people (machines use --json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bot.quality.benchmark import BenchReport, Spread


def _number(ms: float) -> str:
    return f"{ms:.1f}" if ms < 10 else f"{ms:.0f}"


def _ms(spread: Spread) -> tuple[str, str, str]:
    return _number(spread.p50), _number(spread.p95), _number(spread.max)


def render_bench(console: Console, report: BenchReport) -> None:
    console.print(
        f"{report.date}: {report.cpu}, {report.cores} cores (load {report.load_average_1m:.2f}); "
        f"model {report.model}; {report.tokens_per_reply} tokens per reply; "
        f"{report.repeats} cold run(s) of each question each way"
    )
    unindexed = (
        f"; without the essay's index {report.startup_unindexed_ms:.0f} ms, "
        f"{report.startup_unindexed_rss_mb:.0f} MB"
        if report.startup_unindexed_ms is not None and report.startup_unindexed_rss_mb is not None
        else ""
    )
    console.print(
        f"start-up (new process to a ready core) {report.startup_ms:.0f} ms, "
        f"{report.startup_rss_mb:.0f} MB{unindexed}; peak RSS of this run "
        f"{report.peak_rss_mb:.0f} MB"
    )
    paths = Table(title="latency (ms)")
    for column in ("path", "p50", "p95", "max", "n"):
        paths.add_column(column, justify="left" if column == "path" else "right")
    rows: list[tuple[str, Spread | None]] = [
        ("personabot first token (cold cache)", report.personabot_ttft_ms),
        ("raw llama-cpp-python first token", report.raw_ttft_ms),
        ("personabot reply (cold cache)", report.personabot_total_ms),
        ("raw llama-cpp-python reply", report.raw_total_ms),
        ("personabot outside the model (total - generation)", report.outside_model_ms),
        ("first visible text", report.first_visible_ms),
        ("retrieval + answerability", report.retrieval_ms),
        ("first token, new passages (warm)", report.warm_ttft_ms),
        ("reply, new passages (warm)", report.warm_total_ms),
        ("first token, follow-up", report.follow_up_ttft_ms),
        ("first token, follow-up on the same passages", report.follow_up_same_passages_ttft_ms),
        ("logging one exchange", report.logging_ms),
        ("refusal path (no model)", report.refusal_ms),
    ]
    for label, spread in rows:
        if spread is not None:
            paths.add_row(label, *_ms(spread), str(spread.n))
    console.print(paths)
    ratios = Table(title="personabot / raw, per question (medians over the repeats)")
    for column in ("question", "first token", "reply", "reply min..max", "outside model ms"):
        ratios.add_column(column, justify="left" if column == "question" else "right")
    for row in report.per_question:
        ratios.add_row(
            row.question,
            f"{row.ratio_ttft:.3f}",
            f"{row.ratio_total:.3f}",
            f"{row.ratio_total_min:.3f}..{row.ratio_total_max:.3f}",
            f"{row.outside_model_ms:.0f}",
        )
    console.print(ratios)
    total, ttft = report.overhead_total, report.overhead_ttft
    console.print(
        f"overhead over {total.n} questions: reply {total.median:.3f} "
        f"({total.min:.3f}..{total.max:.3f}), first token {ttft.median:.3f} "
        f"({ttft.min:.3f}..{ttft.max:.3f}); pairs left out (token counts differ or no model call): "
        f"{report.pairs_excluded}; answers with a model sentence: "
        f"{report.answered_by_model}/{report.answers}"
    )
    crowd = Table(
        title="concurrent users through the inference queue",
        caption="late: past the deadline; model: a model sentence kept; direct: cited answer",
    )
    for column in ("users", "failed", "late", "model", "direct", "/min", "p50", "p95", "max"):
        crowd.add_column(column, justify="right")
    crowd.add_column("visible p95", justify="right")
    for level in report.concurrency:
        crowd.add_row(
            str(level.users),
            str(level.failed),
            str(level.past_deadline),
            str(level.answered_by_model),
            str(level.direct_answers),
            f"{level.throughput_per_min:.1f}",
            *_ms(level.latency_ms),
            _number(level.first_visible_ms.p95),
        )
    console.print(crowd)
    if report.growth:
        growth = Table(title="cost growth (cold first token)")
        for column in ("factor", "value", "prompt tokens", "first token ms"):
            growth.add_column(column, justify="right")
        for item in report.growth:
            growth.add_row(
                item.factor, str(item.value), str(item.prompt_tokens), f"{item.ttft_ms:.0f}"
            )
        console.print(growth)
