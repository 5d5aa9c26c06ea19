"""The essay's sentence, passage and clause vectors, computed once and kept on disk.

Embedding the essay's texts is most of a first start's cost (seconds even on every core), so set-up
builds them (`personabot index`) and every start after reads them. The cache file is named by the
hash of the texts and of the encoder's weights, so an edited essay or another encoder never reads
stale vectors; when the file is missing, the first start computes and writes it.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits

from bot.errors import PersonabotError
from bot.understanding.encoder import Encoder

logger = logging.getLogger(__name__)
# Vectors already computed in this process (every core built in one process shares them).
_IN_PROCESS: dict[str, np.ndarray] = {}
# Fewer texts than this a thread are not worth a thread of their own.
_TEXTS_A_THREAD = 16


def _key(texts: Sequence[str], encoder: Encoder) -> str:
    digest = hashlib.sha256()
    digest.update(encoder.model_id.encode())
    digest.update(getattr(encoder, "sha256", "").encode())
    for text in texts:
        digest.update(text.encode("utf-8"))
        digest.update(b"\0")
    return digest.hexdigest()[:24]


def cached_vectors(texts: Sequence[str], encoder: Encoder, cache_dir: Path | None) -> np.ndarray:
    """The texts' vectors, from `cache_dir` when a matching file exists; a cache that cannot be
    read or written only costs time."""
    key = _key(texts, encoder)
    if key in _IN_PROCESS:
        return _IN_PROCESS[key]
    if cache_dir is None:
        _IN_PROCESS[key] = _embed_once_each(texts, encoder)
        return _IN_PROCESS[key]
    path = cache_dir / f"vectors-{key}.npy"
    try:
        cached = np.load(path)
        if cached.shape[0] == len(texts):
            _IN_PROCESS[key] = np.asarray(cached, dtype=np.float32)
            return _IN_PROCESS[key]
    except (OSError, ValueError):
        pass
    # Seconds of silence at start-up otherwise: say what is happening and how to avoid it.
    logger.warning(
        "the essay's index is not in %s yet: embedding %d texts once (`personabot index` does it "
        "ahead of time)",
        cache_dir,
        len(texts),
    )
    vectors = _IN_PROCESS[key] = _embed_once_each(texts, encoder)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, vectors)
        partial.replace(path)
    except OSError as exc:
        logger.warning("could not cache the essay's vectors in %s: %s", cache_dir, exc)
    return vectors


class IndexNotWrittenError(PersonabotError):
    """The vectors were computed but the cache folder did not keep them."""


class _Recording:
    """Passes texts to the real encoder and counts them; once `refuse` is set, any text still to
    embed is an error: the disk cache did not hold it."""

    def __init__(self, inner: Encoder) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.sha256 = getattr(inner, "sha256", "")
        self.embedded = 0
        self.refuse = False

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if self.refuse and texts:
            raise IndexNotWrittenError("the vectors just written were not found in the cache")
        self.embedded += len(texts)
        return self.inner.embed(texts)


def build_index(build: Callable[[Encoder], object], encoder: Encoder) -> int:
    """Runs `build` (which reads its vectors through `cached_vectors`), then runs it again from
    the disk cache alone, so a new process is known to embed nothing (IndexNotWrittenError if it
    would). Returns how many texts had to be embedded (0: the cache was already up to date)."""
    recording = _Recording(encoder)
    build(recording)
    _IN_PROCESS.clear()
    recording.refuse = True
    build(recording)
    return recording.embedded


def _embed_once_each(texts: Sequence[str], encoder: Encoder) -> np.ndarray:
    """A text that occurs twice (a one-clause sentence is also its own clause) is embedded once.
    Nothing is answered while the essay is embedded, so every core works on it: numpy lets go of
    the interpreter lock in its loops, and each thread keeps to one BLAS thread."""
    unique = list(dict.fromkeys(texts))
    workers = max(1, min(len(os.sched_getaffinity(0)), len(unique) // _TEXTS_A_THREAD))
    # Interleaved by length, every thread gets as much work as the others.
    by_length = sorted(range(len(unique)), key=lambda i: len(unique[i]))
    shares = [by_length[start::workers] for start in range(workers)]
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(workers) as pool:
        parts = list(pool.map(lambda share: encoder.embed([unique[i] for i in share]), shares))
    vectors = np.zeros((len(unique), parts[0].shape[1] if parts else 0), dtype=np.float32)
    for share, part in zip(shares, parts, strict=True):
        vectors[share] = part
    row = {text: n for n, text in enumerate(unique)}
    return np.asarray(vectors[[row[text] for text in texts]], dtype=np.float32)
