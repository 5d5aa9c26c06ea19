"""The essay's index: built once (set-up's `personabot index`), read by every start after, and
embedded on every core with the same vectors as one text at a time."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import bot.understanding.encoder as encoder_module
from adapters import cli
from bot.settings import PROJECT_ROOT
from bot.understanding import vectors
from bot.understanding.encoder import load_encoder
from bot.understanding.vectors import (
    IndexNotWrittenError,
    _embed_once_each,
    build_index,
    cached_vectors,
)

runner = CliRunner()


class Hashing:
    """Deterministic vectors from each text's hash; counts the texts it embeds."""

    model_id = "hashing"

    def __init__(self) -> None:
        self.embedded: list[str] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.embedded.extend(texts)
        rows = [np.frombuffer(hashlib.sha256(t.encode()).digest(), dtype=np.uint8) for t in texts]
        return np.array(rows, dtype=np.float32).reshape(len(texts), 32)


def test_an_index_is_built_once_and_then_read_from_disk(tmp_path: Path) -> None:
    texts = ["alpha", "beta", "alpha", "gamma"]
    encoder = Hashing()
    assert build_index(lambda e: cached_vectors(texts, e, tmp_path), encoder) == 3
    assert len(list(tmp_path.glob("vectors-*.npy"))) == 1
    assert build_index(lambda e: cached_vectors(texts, e, tmp_path), encoder) == 0
    assert sorted(encoder.embedded) == ["alpha", "beta", "gamma"]


def test_an_index_the_cache_cannot_keep_is_an_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("")
    with pytest.raises(IndexNotWrittenError):
        build_index(lambda e: cached_vectors(["alpha"], e, not_a_folder), Hashing())


def test_every_text_keeps_its_own_vector_when_embedded_on_every_core() -> None:
    texts = [f"text number {n} " * (n % 7 + 1) for n in range(47)]
    texts.append(texts[3])
    encoder = Hashing()
    together = _embed_once_each(texts, encoder)
    assert np.array_equal(together, Hashing().embed(texts))
    assert len(encoder.embedded) == 47  # the repeated text once


@pytest.fixture
def hashing_encoder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setattr(encoder_module, "load_encoder", Hashing)
    monkeypatch.setenv("PERSONABOT_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_the_index_command_builds_then_reports_up_to_date(hashing_encoder: Path) -> None:
    first = runner.invoke(cli.app, ["index"])
    assert first.exit_code == 0, first.output
    assert first.output.startswith("Indexed the essay: ") and "texts embedded in" in first.output
    assert list((hashing_encoder / "vectors").glob("vectors-*.npy"))
    again = runner.invoke(cli.app, ["index"])
    assert again.exit_code == 0 and "is up to date" in again.output


def test_an_unwritable_cache_is_one_line_naming_the_setting(
    hashing_encoder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    hashing_encoder.write_text("a file where the cache folder should be")
    monkeypatch.setattr(sys, "argv", ["personabot", "index"])
    with pytest.raises(SystemExit) as stopped:
        cli.main()
    assert stopped.value.code == 2
    said = capsys.readouterr().err
    assert "personabot: Cannot keep the essay's index in" in said and "PERSONABOT_CACHE_DIR" in said
    assert "Traceback" not in said


def test_batched_and_threaded_vectors_match_one_text_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Batches pad to their longest text and threads share the work; neither may change a vector."""
    monkeypatch.setattr(vectors, "_TEXTS_A_THREAD", 2)
    encoder = load_encoder()
    texts = [
        f"{text} ({n})"
        for text in (
            "Why did Yeltsin feel betrayed?",
            "NATO",
            "The Partnership for Peace was a compromise " * 6,
            "What did Clinton promise?",
            "Primakov advised caution.",
        )
        for n in range(2)
    ]
    alone = np.stack([encoder.embed([text])[0] for text in texts])
    assert np.allclose(encoder.embed(texts), alone, atol=1e-5)
    assert np.allclose(_embed_once_each(texts, encoder), alone, atol=1e-5)
    assert encoder.embed(texts).dtype == np.float32


_LOAD_PEAK = """
import resource
from bot.understanding.encoder import MiniLMEncoder
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
MiniLMEncoder()
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)
"""


def test_loading_the_encoder_holds_one_copy_of_its_weights() -> None:
    """The weights are 87 MB; reading the zip whole and copying the tensors once peaked 170 MB
    above that (measured on this machine), which a first start cannot afford."""
    done = subprocess.run(
        [sys.executable, "-c", _LOAD_PEAK], capture_output=True, text=True, check=True
    )
    assert float(done.stdout) < 87 + 40, done.stdout


def test_the_image_builds_the_index_where_its_starts_look_for_it() -> None:
    """The container's first start reads the index `docker build` wrote, as root, before `USER`."""
    recipe = (PROJECT_ROOT / "Dockerfile").read_text().split("AS runtime", 1)[1]
    cache = re.search(r"PERSONABOT_CACHE_DIR=(\S+)", recipe)
    assert cache, "the runtime stage must choose the cache folder it builds the index in"
    built = recipe.index("RUN personabot index")
    assert recipe.index("PERSONABOT_CACHE_DIR=") < built < recipe.index("\nUSER ")
    assert f"chown -R personabot:personabot {cache.group(1)}" in recipe[built:]
