"""`personabot bench`: its statistics, its options, and (slow) the documented JSON shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from bot.messages import Exchange, IncomingMessage, Reply, Timings, TokenCounts, Trace
from bot.quality.benchmark import Ratio, Spread, _comparison, _Run, measure_startup
from bot.settings import load_settings

PERSONABOT = str(Path(sys.executable).with_name("personabot"))


def _run(total_ms: float, generation_ms: float, ttft_ms: float) -> _Run:
    reply = Reply(
        text="x",
        timings=Timings(total_ms=total_ms, generation_ms=generation_ms),
        tokens=TokenCounts(prompt=10, completion=16),
    )
    exchange = Exchange(message=IncomingMessage(text="q"), reply=reply, trace=Trace())
    return _Run(ttft_ms=ttft_ms, total_ms=total_ms, first_visible_ms=5.0, exchange=exchange)


def test_spread_reports_the_worst_case_beside_the_percentiles() -> None:
    spread = Spread.of([10.0, 12.0, 11.0, 400.0])
    assert spread.max == 400.0 and spread.n == 4
    assert spread.p50 == 11.5 and 12.0 < spread.p95 < 400.0


def test_ratios_are_per_question_medians_with_their_spread() -> None:
    pairs = [
        (_run(1100.0, 1000.0, 110.0), (100.0, 1000.0)),
        (_run(900.0, 850.0, 90.0), (100.0, 1000.0)),
        (_run(1300.0, 1000.0, 130.0), (100.0, 1200.0)),
    ]
    row = _comparison("q", pairs)
    assert row.repeats == 3
    assert row.personabot_total_ms == 1100.0 and row.raw_total_ms == 1000.0
    assert row.ratio_total == 1.1 and row.ratio_ttft == 1.1
    assert (row.ratio_total_min, row.ratio_total_max) == (0.9, 1.1)  # 1.1, 0.9, 1.083
    assert row.outside_model_ms == 100.0  # total - generation: 100, 50, 300
    summary = Ratio.of([1.1, 0.95, 1.3])
    assert (summary.median, summary.min, summary.max, summary.n) == (1.1, 0.95, 1.3, 3)


def test_bad_concurrency_levels_are_one_clear_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [PERSONABOT, "bench", "--users", "4,x"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PERSONABOT_DATA_DIR": str(tmp_path)},
        timeout=60,
    )
    assert result.returncode == 2
    assert "user counts separated by commas" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_start_up_probe_reports_its_own_memory_not_the_bench_s(tmp_path: Path) -> None:
    """Linux carries a parent's peak RSS into a spawned child's ru_maxrss: measured that way, the
    start-up's memory was the bench's own (its loaded model) whenever that was larger."""
    held = np.ones(700 * 2**20 // 8)  # 700 MB in this process while the probe runs
    started_ms, peak_mb = measure_startup(tmp_path, load_settings().cache_dir)
    assert held.all() and started_ms > 0
    assert 50 < peak_mb < 700


@pytest.mark.slow
def test_a_quick_bench_is_quick_and_reports_every_documented_key(tmp_path: Path) -> None:
    """Issue 19: `bench --questions 2 --quick` well under 30 s. The shape is asserted, and the
    invariants between figures; speeds are measured, never asserted beyond that bound."""
    started = time.monotonic()
    result = subprocess.run(
        [PERSONABOT, "bench", "--questions", "2", "--quick", "--users", "3", "--json"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "PERSONABOT_DATA_DIR": str(tmp_path / "data")},
        timeout=300,
    )
    took = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    # 30 s on an idle machine (measured: 17 s on one whose raw model reply took 1.8 s); a shared
    # machine's load, and a CPU on which the model itself is slower, stretch it in proportion:
    # what is bounded is the bench's own work around the model, not the model's speed.
    busy = max(1.0, report["load_average_1m"] / report["cores"])
    slower = max(1.0, report["raw_total_ms"]["p50"] / 1800)
    assert took < 30 * busy * slower, (
        f"took {took:.1f} s at load {report['load_average_1m']}, "
        f"raw model reply {report['raw_total_ms']['p50']:.0f} ms"
    )
    assert report["schema_version"] == 4 and report["quick"] is True
    for key in (
        "personabot_ttft_ms",
        "personabot_total_ms",
        "raw_ttft_ms",
        "raw_total_ms",
        "first_visible_ms",
        "outside_model_ms",
        "retrieval_ms",
        "logging_ms",
        "refusal_ms",
        "default_total_ms",
    ):
        assert set(report[key]) == {"p50", "p95", "max", "n"}, key
    assert report["personabot_total_ms"]["n"] + report["pairs_excluded"] == 2
    assert len(report["per_question"]) == report["overhead_total"]["n"]
    for row in report["per_question"]:
        assert row["ratio_total_min"] <= row["ratio_total"] <= row["ratio_total_max"]
        assert 0 <= row["outside_model_ms"] <= row["personabot_total_ms"]
    assert report["first_visible_ms"]["p50"] <= report["personabot_total_ms"]["max"] + 1
    assert report["startup_ms"] > 0 and report["startup_rss_mb"] > 50
    # The start that must build the essay's index takes seconds: only the full bench measures it.
    assert report["startup_unindexed_ms"] is None and report["startup_unindexed_rss_mb"] is None
    assert 0 <= report["answered_by_model"] <= report["answers"] <= 2
    [crowd] = report["concurrency"]
    assert crowd["users"] == 3 and crowd["failed"] == 0
    assert crowd["latency_ms"]["max"] >= crowd["latency_ms"]["p95"]
    # The reply as configured: by default the model's addition is off, so nothing is generated.
    assert report["default_model_adds"] is False
    assert report["default_total_ms"]["n"] == 2
    [as_configured] = report["default_concurrency"]
    assert as_configured["users"] == 3 and as_configured["failed"] == 0
    assert as_configured["answered_by_model"] == 0 and as_configured["direct_answers"] == 3
    assert report["growth"] == [] and report["warm_ttft_ms"] is None
    assert report["peak_rss_mb"] >= report["startup_rss_mb"] * 0.5 and report["cores"] >= 1
