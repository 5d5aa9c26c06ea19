"""The `personabot` command as a user runs it: real process, real exit codes, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

PERSONABOT = str(Path(sys.executable).with_name("personabot"))


def run(args: list[str], tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PERSONABOT_DATA_DIR": str(tmp_path / "data"), **env}
    return subprocess.run(
        [PERSONABOT, *args],
        check=False,
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
        cwd=tmp_path,
    )


def assert_clean_failure(result: subprocess.CompletedProcess[str], needle: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_empty_question(tmp_path: Path) -> None:
    assert_clean_failure(run(["ask", "   "], tmp_path), "empty")


def test_missing_and_corrupt_model(tmp_path: Path) -> None:
    assert_clean_failure(
        run(["ask", "Why NATO?"], tmp_path, PERSONABOT_MODEL_PATH=str(tmp_path / "none.gguf")),
        "not found",
    )
    corrupt = tmp_path / "corrupt.gguf"
    corrupt.write_bytes(os.urandom(4096))
    assert_clean_failure(
        run(["ask", "Why NATO?"], tmp_path, PERSONABOT_MODEL_PATH=str(corrupt)), "not a GGUF"
    )
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + os.urandom(64))
    assert_clean_failure(
        run(["ask", "Why NATO?"], tmp_path, PERSONABOT_MODEL_PATH=str(truncated)), "Cannot load"
    )


def test_bad_settings_and_knowledge(tmp_path: Path) -> None:
    assert_clean_failure(
        run(["ask", "Why NATO?"], tmp_path, PERSONABOT_N_CTX="lots"), "PERSONABOT_N_CTX"
    )
    assert_clean_failure(
        run(["ask", "Why NATO?"], tmp_path, PERSONABOT_KNOWLEDGE_DIR=str(tmp_path)), "metadata"
    )


def test_eval_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "x"}\n', "utf-8")
    assert_clean_failure(run(["eval", str(bad)], tmp_path), "bad.jsonl:1")
    assert_clean_failure(run(["eval", str(tmp_path / "missing.jsonl")], tmp_path), "Cannot read")


@pytest.mark.slow
def test_ask_json_with_the_real_model(tmp_path: Path) -> None:
    result = run(["ask", "What was Clinton's election motto?", "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    reply = json.loads(result.stdout)
    assert set(reply) == {
        "text",
        "kind",
        "model_sentences",
        "citations",
        "refused",
        "grounded",
        "moderation",
        "timings",
        "tokens",
    }
    assert "economy" in reply["text"] and reply["grounded"] and not reply["refused"]
    assert set(reply["citations"][0]) == {"passage_id", "section", "quote", "passage"}
    # By default the model is not waited for: the essay's words answer (docs/performance.md).
    assert reply["tokens"]["prompt"] == 0 and reply["model_sentences"] == 0


@pytest.mark.slow
def test_bad_input_with_the_real_model(tmp_path: Path) -> None:
    assert_clean_failure(run(["ask", "x" * 100_000], tmp_path), "too long")
    assert_clean_failure(run(["ask", "\x01\x02\ufffd\ufffd\ufffd#"], tmp_path), "could not read")


@pytest.mark.slow
def test_batch_keeps_going_past_bad_lines(tmp_path: Path) -> None:
    batch = tmp_path / "batch.jsonl"
    batch.write_bytes(
        b'{"question": "What was Clinton\'s election motto?"}\n'
        b"not json but a plain question about NATO enlargement?\n"
        b'{"nope": 1}\n'
        b"{broken json\n"
        b"\xff\xfe\x00\x01\n"
        b'{"question": "Recommend me a good laptop."}\n'
    )
    result = run(["ask", "--batch", str(batch), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(rows) == 6
    assert "economy" in rows[0]["text"]
    assert rows[2] == {"line": 3, "error": "no string field 'question'"}
    assert rows[3]["error"] == "not a JSON object"
    assert rows[4]["refused"]
    assert rows[5]["refused"]


@pytest.mark.slow
def test_chat_streams_and_handles_commands(tmp_path: Path) -> None:
    script = "/sources\nWhat was Clinton's election motto?\n/sources\n/reset\n/bogus\n/quit\n"
    result = subprocess.run(
        [PERSONABOT, "chat"],
        check=False,
        input=script,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PERSONABOT_DATA_DIR": str(tmp_path / "data"), "COLUMNS": "200"},
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "no sources yet" in out
    assert "economy" in out
    assert "the-promise-of-the-new-era-09" in out
    assert "conversation forgotten" in out
    assert "Commands:" in out
