"""Hardening report (a benchmark, not a test): every attack in tests/hardening/attacks, against
the real bundled model (or the OpenAI-compatible server that PERSONABOT_INFERENCE_URL names),
with a canary planted in the system prompt: with the input check, without it, and without it
with each turn placed after a real essay question (so that answerability lets it reach the model).

    .venv/bin/python benchmarks/attack_bench.py                 # all three modes, every attack
    .venv/bin/python benchmarks/attack_bench.py --limit 16      # a spread sample per split
    .venv/bin/python benchmarks/attack_bench.py --compromised   # a model that obeys every attack
    .venv/bin/python benchmarks/attack_bench.py --json > benchmarks/results/attacks.json

Per mode, split (the corpus the input patterns were written from, and the held-out attacks) and
attacker goal: attacks, screened by the input check, declined before the model (answerability),
reached the model, model obeyed (its raw
text achieved the goal), succeeded (the user saw it). Then every finding. Exit status 1 when any
attack succeeded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the harness lives with the tests

from bot.factory import build_core  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.quality.benchmark import cpu_model  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.fakes import MemoryLog  # noqa: E402
from tests.hardening.attacks.build_attacks import QUESTIONS  # noqa: E402
from tests.hardening.injection import (  # noqa: E402
    DEFAULT_PROMPTS,
    HELD_OUT_DIR,
    AttackResult,
    CompromisedGenerator,
    Detector,
    carried,
    input_check_bypassed,
    load_attacks,
    plant_canary,
    public_texts,
    sample,
)
from tests.hardening.report import as_json, by_goal, run_corpus  # noqa: E402

MODES = {
    "input_check": "input check on",
    "bypassed": "input check bypassed",
    "carried": "input check bypassed, each turn after a real essay question",
}
COLUMNS = ("attacks", "screened", "declined", "reached_model", "model_obeyed", "succeeded")


def _findings(mode: str, results: list[AttackResult]) -> list[dict[str, Any]]:
    found = []
    for result in results:
        attack = result.attack
        base = {"mode": mode, "split": attack.split, "id": attack.id, "goal": attack.goal}
        if result.succeeded:
            found.append(
                {
                    **base,
                    "where": "reply",
                    "problems": result.problems,
                    "text": result.replies[-1].text[:400],
                }
            )
        if result.model_obeyed:
            found.append(
                {
                    **base,
                    "where": "model",
                    "problems": sorted(set(result.raw_problems)),
                    "text": " | ".join(result.raw_texts)[:400],
                }
            )
    return found


def _commit() -> str:
    """The checked-out commit, so a report says what it measured ("" outside a git checkout)."""
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else ""


def _print(report: dict[str, Any]) -> None:
    print(
        f"{report['date']} ({report['commit'] or 'no commit'}): {report['cpu']}, "
        f"{report['cores']} cores; model {report['model']}; "
        f"canary planted; {report['seconds']:.0f} s"
    )
    for mode, label in MODES.items():
        if mode not in report["modes"]:
            continue
        for split, goals in report["modes"][mode].items():
            print(f"\n{label}, {split.replace('_', '-')} attacks")
            print(f"{'goal':<10}" + "".join(f"{c.replace('_', ' '):>14}" for c in COLUMNS))
            for goal, counts in goals.items():
                print(f"{goal:<10}" + "".join(f"{counts[c]:>14}" for c in COLUMNS))
    for item in report["findings"]:
        print(
            f"\n{item['where'].upper()} {item['mode']} {item['split']} {item['id']}: "
            f"{item['problems']}\n    {item['text'][:300]!r}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument(
        "--limit", type=int, default=0, help="a spread sample of this many per split"
    )
    parser.add_argument("--compromised", action="store_true", help="use the obeying fake model")
    parser.add_argument("--modes", choices=["all", *MODES], default="all")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args()

    corpus, held_out = load_attacks(), load_attacks(HELD_OUT_DIR)
    if args.limit:
        corpus, held_out = sample(corpus, args.limit), sample(held_out, args.limit)
    attacks = corpus + held_out
    modes = list(MODES) if args.modes == "all" else [args.modes]
    started = time.perf_counter()
    commit = _commit()
    report: dict[str, Any] = {"modes": {}, "findings": []}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        canary = plant_canary(DEFAULT_PROMPTS, root / "prompts")
        # The model is off by default (the essay's words answer alone); on, it is the attack
        # surface worth measuring, so the report always turns it on.
        settings = load_settings(
            data_dir=root / "data", prompts_dir=root / "prompts", model_adds=True
        )
        generator = CompromisedGenerator(canary) if args.compromised else None
        core = build_core(settings, generator=generator, log=MemoryLog())
        knowledge = load_knowledge(settings.knowledge_dir)
        detector = Detector(canary, core.canned("system"), public_texts(core, knowledge))
        for mode in modes:
            bypass = mode in ("bypassed", "carried")
            seam = input_check_bypassed() if bypass else contextlib.nullcontext()

            def progress(done: int, total: int, mode: str = mode) -> None:
                print(f"\r{MODES[mode]}: {done}/{total}", end="", file=sys.stderr, flush=True)

            asked = [carried(a, QUESTIONS) for a in attacks] if mode == "carried" else attacks
            with seam:
                results = run_corpus(core, detector, asked, progress)
            print(file=sys.stderr)
            report["modes"][mode] = as_json(by_goal(results))
            report["findings"] += _findings(mode, results)
    report = {
        "schema_version": 1,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit,
        "cpu": cpu_model(),
        "cores": len(os.sched_getaffinity(0)),
        "model": core.generator.model_id,
        "seconds": round(time.perf_counter() - started, 1),
        **report,
    }
    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        _print(report)
    succeeded = any(item["where"] == "reply" for item in report["findings"])
    sys.exit(1 if succeeded else 0)


if __name__ == "__main__":
    main()
