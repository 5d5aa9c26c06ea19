"""Chooses the GGUF file to load: a configured one, or a faster Q4_0 copy derived from the bundled one.

The bundled SmolLM2 file is Q4_1. llama.cpp has a repacked CPU path for Q4_0 that makes prompt
prefill about 1.6x faster here, and re-quantizing the 92 MB file takes under a second, so the
copy is derived locally on first use (no download) and reused afterwards.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from bot.answering.generation import bundled_model_path, check_gguf
from bot.errors import ModelLoadError
from bot.settings import Settings

QUANTIZATIONS = {"q4_0": "Q4_0"}


def derived_path(source: Path, quantization: str, models_dir: Path) -> Path:
    """Named after the source's size and mtime, so a changed source never reuses a stale copy."""
    stat = source.stat()
    tag = f"{stat.st_size}-{int(stat.st_mtime)}"
    return models_dir / f"{source.stem}.{QUANTIZATIONS[quantization]}.{tag}.gguf"


def quantize(source: Path, target: Path, quantization: str) -> None:
    """Writes a re-quantized copy atomically; llama.cpp's per-tensor report goes to /dev/null."""
    import llama_cpp
    from llama_cpp._utils import suppress_stdout_stderr

    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{QUANTIZATIONS[quantization]}")
    params.allow_requantize = True
    with suppress_stdout_stderr(disable=False):
        status = llama_cpp.llama_model_quantize(
            str(source).encode(), str(partial).encode(), ctypes.byref(params)
        )
    if status != 0:
        partial.unlink(missing_ok=True)
        raise ModelLoadError(f"Could not derive a {quantization} copy of {source}.")
    partial.replace(target)


def resolve_model_path(settings: Settings) -> Path:
    """A configured model is used as given; the bundled one is re-quantized when that pays."""
    if settings.model_path is not None:
        return settings.model_path
    source = bundled_model_path()
    if settings.model_quantization == "original":
        return source
    target = derived_path(source, settings.model_quantization, settings.data_dir / "models")
    if not target.exists():
        try:
            quantize(source, target, settings.model_quantization)
        except OSError as exc:
            raise ModelLoadError(f"Cannot write the derived model to {target}: {exc}") from None
    check_gguf(target)
    return target
