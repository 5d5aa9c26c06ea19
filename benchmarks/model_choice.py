"""Can the bundled model pick the answering sentence better than retrieval's order? Measured.

For every in-scope question of the published sets whose three best sentences (retrieval's order)
hold the expected facts in at least one, the model is shown the question and the three and must
answer with a number, held to "1", "2" or "3" by a llama.cpp grammar. Reported: how often the
first sentence holds the facts, how often the model's pick does, how often it picks each place,
and what a pick costs.

Run: .venv/bin/python benchmarks/model_choice.py > benchmarks/results/model-choice.json
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from llama_cpp.llama_grammar import LlamaGrammar

from bot.answering.generation import LlamaGenerator
from bot.factory import build_core
from bot.quality.evaluation import has_facts, load_cases, percentile
from bot.settings import load_settings
from bot.understanding.chat_text import normalize_typing

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "benchmarks" / "eval" / name for name in ("dev.jsonl", "dev2.jsonl")]
CHOICES = 3


def main() -> None:
    core = build_core(load_settings())
    if not isinstance(core.generator, LlamaGenerator):
        raise SystemExit("model_choice measures the in-process model only.")
    llama: Any = core.generator.llama
    grammar = LlamaGrammar.from_string(
        "root ::= " + " | ".join(f'"{n}"' for n in range(1, CHOICES + 1)), verbose=False
    )
    first_right = model_right = 0
    picks = [0] * CHOICES
    spent: list[float] = []
    for case in (c for path in SETS for c in load_cases(path) if c.kind == "in_scope"):
        question = normalize_typing(case.question, core.vocabulary) or case.question
        found = core.retriever.search(question).sentences[:CHOICES]
        holds = [has_facts(s.text, case.facts) for s in found]
        if not any(holds):
            continue
        listing = "\n".join(f"{n}. {s.text}" for n, s in enumerate(found, 1))
        messages = [
            {"role": "system", "content": "You pick the sentence that answers a question."},
            {
                "role": "user",
                "content": f"Question: {question}\n\nSentences:\n{listing}\n\n"
                "Which sentence answers the question? Reply with its number.",
            },
        ]
        llama.reset()
        started = time.perf_counter()
        out = llama.create_chat_completion(messages, grammar=grammar, max_tokens=2, temperature=0)
        spent.append((time.perf_counter() - started) * 1000)
        pick = int(str(out["choices"][0]["message"]["content"]).strip()) - 1
        picks[pick] += 1
        first_right += holds[0]
        model_right += holds[pick]
    report = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "model": core.generator.model_id,
        "questions": len(spent),
        "first_sentence_holds_facts": first_right,
        "model_pick_holds_facts": model_right,
        "picks_by_place": picks,
        "pick_p50_ms": round(percentile(spent, 0.5), 1),
        "pick_p95_ms": round(percentile(spent, 0.95), 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
