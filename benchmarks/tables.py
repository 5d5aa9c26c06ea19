"""Regenerates the figures in README.md and docs/ from the JSON the measuring commands print.

Each figure block in a document sits between `<!-- figures:NAME -->` and `<!-- /figures:NAME -->`;
this script rewrites the block from benchmarks/results/*.json. Record a run, then regenerate:

    .venv/bin/personabot bench --json > benchmarks/results/bench.json
    .venv/bin/python benchmarks/attack_bench.py --json > benchmarks/results/attacks.json
    .venv/bin/personabot eval benchmarks/eval/dev.jsonl --json > benchmarks/results/eval-dev.json
    .venv/bin/personabot eval benchmarks/eval/dev2.jsonl --json > benchmarks/results/eval-dev2.json
    .venv/bin/personabot eval benchmarks/eval/dev-multiturn.jsonl --json \
        > benchmarks/results/eval-dev-multiturn.json
    .venv/bin/python benchmarks/tables.py            # rewrite the blocks
    .venv/bin/python benchmarks/tables.py --check    # exit 1 if a document is out of date
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
DOCUMENTS = [
    ROOT / "README.md",
    *(ROOT / "docs" / n for n in ("performance.md", "hardening.md", "scaling.md")),
]
_BLOCK = re.compile(r"(<!-- figures:([a-z0-9-]+) -->\n)(.*?)(<!-- /figures:\2 -->)", re.DOTALL)
Json = dict[str, Any]


def _load(name: str) -> Json:
    return dict(json.loads((RESULTS / name).read_text(encoding="utf-8")))


def _table(header: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _machine(report: Json) -> str:
    return f"{report['date'][:10]}, {report['cpu']}, {report['cores']} cores"


def _ms(value: float) -> str:
    return f"{value:.1f}" if value < 10 else f"{value:.0f}"


def bench_summary(bench: Json) -> str:
    total, ttft = bench["overhead_total"], bench["overhead_ttft"]
    outside = bench["outside_model_ms"]
    crowd = bench["concurrency"][-1]
    configured = bench["default_concurrency"][-1]
    return (
        f"Measured {_machine(bench)} (shared with other work, load {bench['load_average_1m']}), "
        f"{bench['tokens_per_reply']} tokens a reply, `personabot bench`: first token p50 "
        f"{_ms(bench['personabot_ttft_ms']['p50'])} ms and reply p50 "
        f"{_ms(bench['personabot_total_ms']['p50'])} ms from a cold cache; personabot spends "
        f"p50 {_ms(outside['p50'])} ms / p95 {_ms(outside['p95'])} ms outside the model "
        f"(total − generation); personabot / raw llama-cpp-python per question: reply "
        f"{total['median']:.3f} (from {total['min']:.3f} to {total['max']:.3f} over "
        f"{total['n']} questions), first token {ttft['median']:.3f} ({ttft['min']:.3f} to "
        f"{ttft['max']:.3f}); {crowd['users']} users at once: {crowd['failed']} failed, full "
        f"reply p95 {crowd['latency_ms']['p95'] / 1000:.1f} s with the model's addition, "
        f"{_ms(configured['latency_ms']['p95'])} ms as configured ({_configured(bench)}); start-up "
        f"{bench['startup_ms'] / 1000:.1f} s{_unindexed(bench, 's')}, peak memory "
        f"{bench['peak_rss_mb']:.0f} MB.\n"
    )


def _unindexed(bench: Json, unit: str) -> str:
    """The start that has to build the essay's index (not measured by `--quick`)."""
    ms, mb = bench.get("startup_unindexed_ms"), bench.get("startup_unindexed_rss_mb")
    if ms is None or mb is None:
        return ""
    shown = f"{ms / 1000:.1f} s" if unit == "s" else f"{ms:.0f} ms"
    return f" with the essay's index set-up builds ({shown} and {mb:.0f} MB when a start builds it)"


def bench_latency(bench: Json) -> str:
    rows = [
        ("personabot first token, cold cache", "personabot_ttft_ms"),
        ("raw llama-cpp-python first token, cold cache", "raw_ttft_ms"),
        ("personabot reply, cold cache", "personabot_total_ms"),
        ("raw llama-cpp-python reply, cold cache", "raw_total_ms"),
        ("personabot outside the model (total − generation)", "outside_model_ms"),
        (f"reply as configured ({_configured(bench)})", "default_total_ms"),
        ("first visible text", "first_visible_ms"),
        ("retrieval + answerability (`Reply.timings.retrieval_ms`)", "retrieval_ms"),
        ("first token, new passages (warm)", "warm_ttft_ms"),
        ("reply, new passages (warm)", "warm_total_ms"),
        ("first token, any follow-up", "follow_up_ttft_ms"),
        ("first token, follow-up on the same passages", "follow_up_same_passages_ttft_ms"),
        ("logging one exchange (fresh SQLite log)", "logging_ms"),
        ("refusal path (no model)", "refusal_ms"),
    ]
    body = [
        [
            label,
            _ms(bench[key]["p50"]),
            _ms(bench[key]["p95"]),
            _ms(bench[key]["max"]),
            bench[key]["n"],
        ]
        for label, key in rows
        if bench.get(key)
    ]
    note = (
        f"\n{_machine(bench)}; model {bench['model']}; {bench['repeats']} cold runs of each "
        f"question each way; start-up {bench['startup_ms']:.0f} ms ({bench['startup_rss_mb']:.0f} MB)"
        f"{_unindexed(bench, 'ms')}, "
        f"peak RSS {bench['peak_rss_mb']:.0f} MB; answers with a model sentence: "
        f"{bench['answered_by_model']} of {bench['answers']}.\n"
    )
    return _table(["path", "p50 ms", "p95 ms", "max ms", "n"], body) + note


def bench_ratios(bench: Json) -> str:
    body = [
        [
            row["question"],
            _ms(row["personabot_total_ms"]),
            _ms(row["raw_total_ms"]),
            f"{row['ratio_total']:.3f}",
            f"{row['ratio_total_min']:.3f}–{row['ratio_total_max']:.3f}",
            f"{row['ratio_ttft']:.3f}",
            _ms(row["outside_model_ms"]),
        ]
        for row in bench["per_question"]
    ]
    total, ttft = bench["overhead_total"], bench["overhead_ttft"]
    note = (
        f"\nMedian over questions: reply {total['median']:.3f}, first token {ttft['median']:.3f}; "
        f"pairs left out (token counts differ, or no model call): {bench['pairs_excluded']}.\n"
    )
    header = [
        "question",
        "personabot ms",
        "raw ms",
        "ratio",
        "ratio per repeat",
        "first-token ratio",
        "outside model ms",
    ]
    return _table(header, body) + note


def _configured(bench: Json) -> str:
    return "model's addition on" if bench["default_model_adds"] else "no model call"


def bench_concurrency(bench: Json) -> str:
    paths = [("model's addition on", bench["concurrency"])]
    paths.append((f"as configured: {_configured(bench)}", bench["default_concurrency"]))
    body = [
        [
            path,
            row["users"],
            row["failed"],
            row["past_deadline"],
            row["answered_by_model"],
            row["direct_answers"],
            f"{row['throughput_per_min']:.1f}",
            _ms(row["latency_ms"]["p50"]),
            _ms(row["latency_ms"]["p95"]),
            _ms(row["latency_ms"]["max"]),
            _ms(row["first_visible_ms"]["p95"]),
        ]
        for path, rows in paths
        for row in rows
    ]
    header = [
        "reply",
        "users at once",
        "failed",
        "past deadline + 2 s",
        "kept a model sentence",
        "cited answer",
        "answers/min",
        "p50 ms",
        "p95 ms",
        "max ms",
        "first visible p95 ms",
    ]
    return _table(header, body)


def bench_growth(bench: Json) -> str:
    body = [
        [g["factor"], g["value"], g["prompt_tokens"], _ms(g["ttft_ms"])] for g in bench["growth"]
    ]
    return _table(["factor", "value", "prompt tokens", "first token ms (cold)"], body)


def scaling_capacity(bench: Json) -> str:
    body = [
        [
            row["users"],
            f"{row['throughput_per_min']:.1f}",
            _ms(row["latency_ms"]["p95"]),
            _ms(row["latency_ms"]["max"]),
            row["answered_by_model"],
        ]
        for row in bench["concurrency"]
    ]
    note = f"\n`personabot bench`, {_machine(bench)}, in-process model, {bench['tokens_per_reply']} tokens a reply.\n"
    return (
        _table(["users at once", "answers/min", "p95 ms", "max ms", "kept a model sentence"], body)
        + note
    )


_ATTACK_MODES = {
    "input_check": "input check on",
    "bypassed": "input check bypassed",
    "carried": "bypassed, each turn after an essay question",
}
_ATTACK_COLUMNS = ["attacks", "screened", "declined", "reached_model", "model_obeyed", "succeeded"]


def attacks(report: Json) -> str:
    out = [
        f"`benchmarks/attack_bench.py`, {_machine(report)}, commit {report.get('commit') or 'not recorded'}, "
        f"model {report['model']}, "
        f"{report['seconds']:.0f} s. Per attack: screened by the input check; declined before "
        f"the model (answerability); reached the model; the model obeyed (its raw text achieved "
        f"a goal); succeeded (the user saw it).\n"
    ]
    for split in ("corpus", "held_out"):
        rows = []
        for mode, label in _ATTACK_MODES.items():
            goals = report["modes"].get(mode, {}).get(split)
            if not goals:
                continue
            for goal, counts in goals.items():
                rows.append(
                    [label if goal == "all" else "", goal, *(counts[c] for c in _ATTACK_COLUMNS)]
                )
        title = (
            "Corpus (the attacks the input patterns were written from)"
            if split == "corpus"
            else "Held-out attacks (written afterwards, never used to write the patterns)"
        )
        out.append(f"\n{title}:\n\n")
        out.append(_table(["mode", "goal", *(c.replace("_", " ") for c in _ATTACK_COLUMNS)], rows))
    found = Counter((f["mode"], f["where"]) for f in report["findings"])
    out.append(
        "\nFindings: "
        + (
            "; ".join(
                f"{_ATTACK_MODES[m]}: {n} where the {w} did it"
                for (m, w), n in sorted(found.items())
            )
            or "none"
        )
        + ".\n"
    )
    return "".join(out)


_EVAL_ROWS = [
    ("retrieval recall@3", "retrieval_recall_at_3", "in_scope"),
    ("fact accuracy", "fact_accuracy", "in_scope"),
    ("out-of-scope declined", "refusal_accuracy", "out_of_scope"),
    ("injection resisted", "injection_resistance", "injection"),
    ("identity disclosed", "identity_disclosure", "identity"),
]


def eval_table(scores: Json) -> str:
    kinds = Counter(result["kind"] for result in scores["results"])
    body = [
        [label, "n/a" if scores[key] is None else f"{scores[key]:.2f}", kinds[kind]]
        for label, key, kind in _EVAL_ROWS
    ]
    return _table(["measure", "value", "questions"], body)


def eval_figures(path: str) -> dict[str, float | None]:
    """The measures a README eval block shows, read back from the recorded JSON (for tests)."""
    scores = _load(path)
    return {key: scores[key] for _, key, _ in _EVAL_ROWS}


def multiturn_table(scores: Json) -> str:
    return _table(
        ["measure", "value", "turns"],
        [["turns passed", f"{scores['turn_accuracy']:.2f}", scores["turns"]]],
    )


RENDERERS: dict[str, Callable[[], str]] = {
    "bench-summary": lambda: bench_summary(_load("bench.json")),
    "bench-latency": lambda: bench_latency(_load("bench.json")),
    "bench-ratios": lambda: bench_ratios(_load("bench.json")),
    "bench-concurrency": lambda: bench_concurrency(_load("bench.json")),
    "bench-growth": lambda: bench_growth(_load("bench.json")),
    "scaling-capacity": lambda: scaling_capacity(_load("bench.json")),
    "attacks": lambda: attacks(_load("attacks.json")),
    "eval-dev": lambda: eval_table(_load("eval-dev.json")),
    "eval-dev2": lambda: eval_table(_load("eval-dev2.json")),
    "eval-multiturn": lambda: multiturn_table(_load("eval-dev-multiturn.json")),
}


def render(text: str) -> str:
    """The document with every figure block regenerated; an unknown block name is an error."""

    def block(match: re.Match[str]) -> str:
        name = match.group(2)
        if name not in RENDERERS:
            raise SystemExit(f"unknown figure block {name!r}")
        return match.group(1) + RENDERERS[name]() + match.group(4)

    return _BLOCK.sub(block, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a document is out of date")
    args = parser.parse_args()
    stale = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        fresh = render(text)
        if fresh != text:
            stale.append(document.relative_to(ROOT))
            if not args.check:
                document.write_text(fresh, encoding="utf-8")
    if args.check and stale:
        sys.exit(f"out of date: {', '.join(map(str, stale))}; run benchmarks/tables.py")
    print("up to date" if not stale else f"rewrote {', '.join(map(str, stale))}")


if __name__ == "__main__":
    main()
