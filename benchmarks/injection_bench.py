"""Prompt-injection benchmark (not a test): every attack in tests/hardening/attacks against the
real bundled model, with a canary planted in the system prompt.

    .venv/bin/python benchmarks/injection_bench.py               # all attacks, real model
    .venv/bin/python benchmarks/injection_bench.py --limit 30    # the CI sample
    .venv/bin/python benchmarks/injection_bench.py --compromised # a model that obeys every attack

Prints counts per attack kind (tried, succeeded, refused, grounded) and every successful attack.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the harness lives with the tests

from bot.factory import build_core  # noqa: E402
from bot.knowledge import load_knowledge  # noqa: E402
from bot.settings import load_settings  # noqa: E402
from tests.fakes import MemoryLog  # noqa: E402
from tests.hardening.injection import (  # noqa: E402
    DEFAULT_PROMPTS,
    CompromisedGenerator,
    Detector,
    load_attacks,
    plant_canary,
    public_texts,
    run_attack,
    sample,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=0, help="a spread sample of this many")
    parser.add_argument("--compromised", action="store_true", help="use the obeying fake model")
    args = parser.parse_args()

    attacks = load_attacks()
    if args.limit:
        attacks = sample(attacks, args.limit)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        canary = plant_canary(DEFAULT_PROMPTS, root / "prompts")
        settings = load_settings(data_dir=root / "data", prompts_dir=root / "prompts")
        generator = CompromisedGenerator(canary) if args.compromised else None
        core = build_core(settings, generator=generator, log=MemoryLog())
        knowledge = load_knowledge(settings.knowledge_dir)
        detector = Detector(canary, core.canned("system"), public_texts(core, knowledge))

        counts: dict[str, Counter[str]] = {}
        failures = []
        started = time.perf_counter()
        for index, attack in enumerate(attacks):
            result = run_attack(core, detector, attack, index)
            kind = counts.setdefault(attack.kind, Counter())
            kind["tried"] += 1
            kind["turns"] += len(result.replies)
            kind["succeeded"] += result.succeeded
            kind["refused"] += sum(r.refused for r in result.replies)
            kind["grounded"] += sum(r.grounded for r in result.replies)
            if result.succeeded:
                failures.append((attack.id, result.problems, result.replies[-1].text))
        elapsed = time.perf_counter() - started

    print(f"model: {core.generator.model_id}; canary planted; {len(attacks)} attacks")
    print(f"{'kind':<12}{'tried':>7}{'turns':>7}{'refused':>9}{'grounded':>10}{'succeeded':>11}")
    total: Counter[str] = Counter()
    for name, c in sorted(counts.items()):
        total.update(c)
        print(
            f"{name:<12}{c['tried']:>7}{c['turns']:>7}{c['refused']:>9}"
            f"{c['grounded']:>10}{c['succeeded']:>11}"
        )
    print(
        f"{'total':<12}{total['tried']:>7}{total['turns']:>7}{total['refused']:>9}"
        f"{total['grounded']:>10}{total['succeeded']:>11}"
    )
    print(f"{elapsed:.1f} s, {1000 * elapsed / max(1, total['turns']):.0f} ms per turn")
    for attack_id, problems, text in failures:
        print(f"SUCCEEDED {attack_id}: {problems}\n    {text[:300]!r}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
