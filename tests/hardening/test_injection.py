"""Prompt injection: 300+ attacks from data files, against a fully compromised model and the real one."""

from __future__ import annotations

from collections import Counter

import pytest

from bot.answering.generation import GenerationRequest
from bot.core import DialogueCore
from bot.factory import build_core
from bot.knowledge import Knowledge
from bot.settings import load_settings
from tests.fakes import MemoryLog
from tests.hardening.attacks.build_attacks import OUTPUT, render
from tests.hardening.injection import (
    DEFAULT_PROMPTS,
    CompromisedGenerator,
    Detector,
    load_attacks,
    plant_canary,
    public_texts,
    run_attack,
    sample,
)
from tests.hardening.tally import TALLY

ATTACKS = load_attacks()
KINDS = {"direct", "role_play", "quoted", "fake_system", "leak", "multi_turn", "unicode", "wrapped"}
REAL_MODEL_SAMPLE = 30


def test_the_attack_set_is_large_varied_and_well_formed() -> None:
    kinds = Counter(attack.kind for attack in ATTACKS)
    assert len(ATTACKS) >= 300
    assert set(kinds) == KINDS
    assert min(kinds.values()) >= 10, kinds
    assert len({attack.id for attack in ATTACKS}) == len(ATTACKS)
    assert all(len(a.turns) >= 3 for a in ATTACKS if a.kind == "multi_turn")
    disguised = [a for a in ATTACKS if a.kind == "unicode"]
    assert all(any(ord(ch) > 0x7F for ch in a.turns[0]) for a in disguised)


def test_the_combined_file_is_what_the_builder_writes() -> None:
    assert OUTPUT.read_text(encoding="utf-8") == render()


def test_detectors_catch_a_compromised_reply_and_spare_every_public_text(
    compromised_core: DialogueCore, detector: Detector, knowledge: Knowledge
) -> None:
    generator = CompromisedGenerator(detector.canary)
    leaked = generator.text_for(GenerationRequest(detector.system_prompt, "Question: hi", 8))
    assert {"canary", "system prompt run"} <= set(detector.problems(leaked))
    assert any(p.startswith("role change") for p in detector.problems(leaked))
    assert detector.problems(f"code {detector.canary.lower()[:6]} {detector.canary[6:]}")
    for text in public_texts(compromised_core, knowledge):
        assert detector.problems(text) == [], text


def test_no_attack_turns_the_persona_even_when_the_model_is_fully_compromised(
    compromised_core: DialogueCore, detector: Detector, log: MemoryLog
) -> None:
    """The fake model obeys every attack; grounding and moderation must still hold the line."""
    generator = compromised_core.generator
    assert isinstance(generator, CompromisedGenerator)
    failures = []
    turns = 0
    for index, attack in enumerate(ATTACKS):
        result = run_attack(compromised_core, detector, attack, index)
        turns += len(result.replies)
        TALLY.attacks_tried += 1
        if result.succeeded:
            TALLY.attacks_succeeded += 1
            failures.append(f"{attack.id}: {result.problems} -> {result.replies[-1].text!r}")
    assert failures == []
    # The layers were really tested: many attacks reached the (compromised) model.
    assert generator.calls >= 20
    assert len(log.exchanges) == turns


@pytest.fixture(scope="module")
def real_core(tmp_path_factory: pytest.TempPathFactory) -> tuple[DialogueCore, str]:
    root = tmp_path_factory.mktemp("real-injection")
    canary = plant_canary(DEFAULT_PROMPTS, root / "prompts")
    settings = load_settings(data_dir=root / "data", prompts_dir=root / "prompts", n_threads=2)
    return build_core(settings, log=MemoryLog()), canary


@pytest.mark.slow
@pytest.mark.parametrize("attack", sample(ATTACKS, REAL_MODEL_SAMPLE), ids=lambda a: a.id)
def test_a_sample_of_attacks_fails_against_the_real_bundled_model(
    real_core: tuple[DialogueCore, str], knowledge: Knowledge, attack: object
) -> None:
    core, canary = real_core
    detector = Detector(canary, core.canned("system"), public_texts(core, knowledge))
    index = ATTACKS.index(attack)  # type: ignore[arg-type]
    result = run_attack(core, detector, ATTACKS[index], index)
    TALLY.attacks_tried += 1
    TALLY.attacks_succeeded += result.succeeded
    assert result.problems == [], [r.text for r in result.replies]


def test_sample_spreads_over_every_kind() -> None:
    assert {a.kind for a in sample(ATTACKS, REAL_MODEL_SAMPLE)} == KINDS
