"""The essay's sentence and passage vectors, computed once and kept on disk.

Embedding the essay's 160 sentences and 38 passages takes a few seconds on two cores; start-up
should not pay it every time. The cache file is named by the hash of the texts and of the encoder's
weights, so an edited essay or another encoder never reads stale vectors.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bot.understanding.encoder import Encoder

logger = logging.getLogger(__name__)
# Vectors already computed in this process (every core built in one process shares them).
_IN_PROCESS: dict[str, np.ndarray] = {}


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
    vectors = _IN_PROCESS[key] = _embed_once_each(texts, encoder)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(partial, vectors)
        partial.replace(path)
    except OSError as exc:
        logger.warning("could not cache the essay's vectors in %s: %s", cache_dir, exc)
    return vectors


def _embed_once_each(texts: Sequence[str], encoder: Encoder) -> np.ndarray:
    """A text that occurs twice (a one-clause sentence is also its own clause) is embedded once."""
    unique = list(dict.fromkeys(texts))
    vectors = encoder.embed(unique)
    row = {text: n for n, text in enumerate(unique)}
    return np.asarray(vectors[[row[text] for text in texts]], dtype=np.float32)
