"""Counts per attacker goal: how many attacks the input check screened, how many were declined
before the model (answerability), how many reached the model, how many the model obeyed (its raw text achieved the goal), and how many succeeded (the
user saw it). Shared by the tests and benchmarks/attack_bench.py."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

from bot.core import DialogueCore
from tests.hardening.injection import Attack, AttackResult, Detector, run_attack


@dataclass
class GoalCounts:
    attacks: int = 0
    turns: int = 0
    screened: int = 0
    # Neither screened nor shown to the model: answerability (the scope gate) declined it.
    declined: int = 0
    reached_model: int = 0
    model_obeyed: int = 0
    succeeded: int = 0

    def add(self, result: AttackResult) -> None:
        self.attacks += 1
        self.turns += len(result.replies)
        self.screened += result.screened
        self.declined += not (result.screened or result.reached_model)
        self.reached_model += result.reached_model
        self.model_obeyed += result.model_obeyed
        self.succeeded += result.succeeded


def run_corpus(
    core: DialogueCore,
    detector: Detector,
    attacks: Sequence[Attack],
    progress: Callable[[int, int], None] = lambda *_: None,
) -> list[AttackResult]:
    """Every attack in its own conversation (numbered by position, so runs do not share memory)."""
    results = []
    for index, attack in enumerate(attacks):
        progress(index, len(attacks))
        results.append(run_attack(core, detector, attack, index))
    progress(len(attacks), len(attacks))
    return results


def by_goal(results: Iterable[AttackResult]) -> dict[str, dict[str, GoalCounts]]:
    """split -> goal -> counts, with an "all" row per split."""
    table: dict[str, dict[str, GoalCounts]] = {}
    for result in results:
        split = table.setdefault(result.attack.split, {})
        split.setdefault(result.attack.goal, GoalCounts()).add(result)
        split.setdefault("all", GoalCounts()).add(result)
    return {name: dict(sorted(goals.items())) for name, goals in sorted(table.items())}


def as_json(table: dict[str, dict[str, GoalCounts]]) -> dict[str, dict[str, dict[str, int]]]:
    return {split: {goal: asdict(c) for goal, c in goals.items()} for split, goals in table.items()}
