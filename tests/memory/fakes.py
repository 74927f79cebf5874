"""Test doubles for the vector memory: a deterministic hashing embedder and a hand-driven clock."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import numpy as np

T0 = datetime(2025, 1, 1, tzinfo=UTC)


class HashEmbedder:
    """Bag of words: each word maps to a fixed pseudo-random unit vector and a text to their normalised sum.

    Texts that share words are similar and an identical text scores 1.0, which is all the memory's logic
    needs; nothing is downloaded. ``calls`` and ``texts`` count the work done (to prove no re-embedding).
    """

    def __init__(self, dimension: int = 64) -> None:
        self._dimension = dimension
        self._words: dict[str, np.ndarray] = {}
        self.calls = 0
        self.texts = 0

    @property
    def dimension(self) -> int:
        return self._dimension

    def word(self, word: str) -> np.ndarray:
        if word not in self._words:
            seed = int.from_bytes(hashlib.blake2b(word.encode("utf-8", "surrogatepass")).digest()[:8], "little")
            vector = np.random.default_rng(seed).standard_normal(self._dimension)
            self._words[word] = vector / np.linalg.norm(vector)
        return self._words[word]

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.texts += len(texts)
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for i, text in enumerate(texts):
            words = re.findall(r"\w+", text.lower()) or [text]
            vector = np.sum([self.word(w) for w in words], axis=0)
            out[i] = vector / np.linalg.norm(vector)
        return out


class ManualClock:
    """A clock tests move by hand; starts at 2025-01-01 UTC."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float = 60.0) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


def unit_rows(n: int, dimension: int, seed: int = 0) -> np.ndarray:
    """``n`` random unit float32 rows."""
    rows = np.random.default_rng(seed).standard_normal((n, dimension)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def clustered_rows(n: int, dimension: int, seed: int = 0, *, bases: int | None = None) -> np.ndarray:
    """Unit rows shaped like sentence embeddings, built as ``bench/_data.py: derived_vectors`` builds them.

    Each row is a "fact" vector (facts cluster in topics) pulled towards another one and blurred, so every
    fact has a handful of close paraphrases (the hard case for approximate indexes). The ``bases`` fact
    vectors depend only on their number, so calls with different seeds and the same ``bases`` give data
    and queries of one corpus.
    """
    count = bases or max(1, n // 10)
    base_rng = np.random.default_rng(1_000 + count)
    # Facts come in topics (20 per topic), as sentence embeddings do: an anisotropic, clustered cloud.
    topics = base_rng.standard_normal((max(1, count // 20), dimension))
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    spread = 1.5 * base_rng.standard_normal((count, dimension)) / np.sqrt(dimension)
    base = topics[base_rng.integers(0, len(topics), count)] + spread
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    pulled = base[rng.integers(0, count, n)] + rng.uniform(0, 0.5, (n, 1)) * base[rng.integers(0, count, n)]
    rows = pulled + 0.25 * rng.standard_normal((n, dimension)) / np.sqrt(dimension)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
