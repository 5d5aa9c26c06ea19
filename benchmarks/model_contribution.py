"""What the model adds to the direct answer, per quantization: measured, so the default is chosen by it.

For every in-scope question of the published sets, the core builds the direct answer from the
essay and then lets the model add one sentence (PERSONABOT_MODEL_ADDS). The bench records the
model's raw text and what survived the per-claim check, and reports per model file:
- contribution: the share of answers that kept a model sentence;
- faithful raw: the share of the model's raw sentences that one essay sentence states (its numbers,
  names and polarity included), i.e. how often the model writes something true to the essay;
- degenerate: the share of raw generations that repeat a word four times in a row or more;
- generation p50 / p95: what waiting for the model costs.

Run: .venv/bin/python benchmarks/model_contribution.py [--limit N] > benchmarks/results/model.json
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from bot.answering.generation import Generation, GenerationRequest, Generator, TokenSink
from bot.answering.grounding import check
from bot.factory import build_core, build_generator
from bot.messages import IncomingMessage
from bot.quality.evaluation import percentile
from bot.settings import load_settings
from bot.text import sentences

ROOT = Path(__file__).resolve().parent.parent
SETS = [ROOT / "benchmarks" / "eval" / name for name in ("dev.jsonl", "dev2.jsonl")]
_WORD = re.compile(r"\w[\w']*")
_LONGEST_LOOP = 4


def degenerate(text: str) -> bool:
    """A word or a phrase of up to four words three times in a row ("Russia's Russia's Russia's",
    "The answer is: The answer is: The answer is:"): the model is looping."""
    words = [w.lower() for w in _WORD.findall(text)]
    for size in range(1, _LONGEST_LOOP + 1):
        for i in range(len(words) - 3 * size + 1):
            first = words[i : i + size]
            if first == words[i + size : i + 2 * size] == words[i + 2 * size : i + 3 * size]:
                return True
    return False


class Recording:
    """Passes requests to the real generator and keeps what it wrote."""

    def __init__(self, inner: Generator) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.generations: list[Generation] = []

    def generate(self, request: GenerationRequest, on_token: TokenSink | None = None) -> Generation:
        generation = self.inner.generate(request, on_token)
        self.generations.append(generation)
        return generation


def questions(limit: int | None) -> list[str]:
    found = []
    for path in SETS:
        for line in path.read_text("utf-8").splitlines():
            case = json.loads(line)
            if case["kind"] == "in_scope":
                found.append(case["question"])
    return found[:limit]


def measure(quantization: str, asked: list[str]) -> dict[str, object]:
    # A long deadline: this measures what the model writes, not how busy the machine is.
    settings = load_settings(
        model_adds=True, model_quantization=quantization, generation_deadline_s=60
    )
    recording = Recording(build_generator(settings))
    core = build_core(settings, generator=recording)
    kept = raw_sentences = faithful = looping = answered = 0
    times: list[float] = []
    examples: list[dict[str, str]] = []
    for question in asked:
        before = len(recording.generations)
        exchange = core.respond(IncomingMessage(text=question, channel="contribution"))
        reply = exchange.reply
        if reply.refused or len(recording.generations) == before:
            continue
        answered += 1
        generation = recording.generations[-1]
        times.append(generation.total_ms)
        kept += reply.model_sentences > 0
        looping += degenerate(generation.text)
        evidence = [c.passage for c in reply.citations]
        drafted = sentences(generation.text.strip())
        raw_sentences += len(drafted)
        faithful += len(check(generation.text, evidence).kept)
        if len(examples) < 6:
            examples.append({"question": question, "model": generation.text.strip()[:300]})
    return {
        "quantization": quantization,
        "model_id": recording.model_id,
        "answered": answered,
        "contribution": kept / answered if answered else 0.0,
        "faithful_raw": faithful / raw_sentences if raw_sentences else 0.0,
        "degenerate": looping / answered if answered else 0.0,
        "generation_p50_ms": percentile(times, 0.5),
        "generation_p95_ms": percentile(times, 0.95),
        "examples": examples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="Questions per model file.")
    parser.add_argument("--quantization", action="append", choices=["q4_0", "original"])
    options = parser.parse_args()
    asked = questions(options.limit)
    rows = [measure(q, asked) for q in options.quantization or ["q4_0", "original"]]
    report = {
        "kind": "model_contribution",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "questions": len(asked),
        "rows": rows,
    }
    json.dump(report, sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
