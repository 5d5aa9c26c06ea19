"""Renders `personabot bench` results as tables for people (machines use --json)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from bot.quality.benchmark import BenchReport, Spread


def _ms(spread: Spread) -> tuple[str, str]:
    return f"{spread.p50_ms:.0f}", f"{spread.p95_ms:.0f}"


def render_bench(console: Console, report: BenchReport) -> None:
    console.print(
        f"{report.cpu}, {report.cores} cores; model {report.model}; "
        f"{report.tokens_per_reply} tokens per reply; peak RSS {report.peak_rss_mb:.0f} MB"
    )
    paths = Table(title="latency (ms)")
    for column in ("path", "p50", "p95", "n"):
        paths.add_column(column, justify="left" if column == "path" else "right")
    for label, spread in [
        ("personabot first token (cold cache)", report.personabot_ttft),
        ("raw llama-cpp-python first token", report.raw_ttft),
        ("personabot reply (cold cache)", report.personabot_total),
        ("raw llama-cpp-python reply", report.raw_total),
        ("first token, new passages (warm)", report.warm_ttft),
        ("reply, new passages (warm)", report.warm_total),
        ("first token, follow-up", report.follow_up_ttft),
        ("first token, follow-up on the same passages", report.follow_up_same_passages_ttft),
        ("retrieval", report.retrieval),
        ("logging one exchange", report.logging),
        ("refusal path (no model)", report.refusal),
    ]:
        paths.add_row(label, *_ms(spread), str(spread.n))
    console.print(paths)
    console.print(
        f"overhead personabot/raw: total {report.overhead_total:.3f}, "
        f"first token {report.overhead_ttft:.3f}; follow-ups reusing the same passages: "
        f"{report.follow_ups_reusing_passages}/{report.follow_up_ttft.n}"
    )
    crowd = Table(title="concurrent users through the inference queue")
    for column in (
        "users",
        "requests",
        "failed",
        "past deadline",
        "model answered",
        "per min",
        "p50 ms",
        "p95 ms",
    ):
        crowd.add_column(column, justify="right")
    for row in report.concurrency:
        crowd.add_row(
            str(row.users),
            str(row.requests),
            str(row.failed),
            str(row.past_deadline),
            str(row.answered_by_model),
            f"{row.throughput_per_min:.1f}",
            *_ms(row.latency),
        )
    console.print(crowd)
    growth = Table(title="cost growth (cold first token)")
    for column in ("factor", "value", "prompt tokens", "first token ms"):
        growth.add_column(column, justify="right")
    for item in report.growth:
        growth.add_row(item.factor, str(item.value), str(item.prompt_tokens), f"{item.ttft_ms:.0f}")
    console.print(growth)
