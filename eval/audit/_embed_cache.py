"""A bounded cache in front of an embedder, so that a batch of questions is embedded in one call.

The retriever embeds one question at a time (a vector-memory search per question); :class:`RagSetup` first
embeds its whole batch through this cache, and the per-question searches then find their vectors here.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from memory import Embedder

__all__ = ["CachingEmbedder"]


class CachingEmbedder:
    """An :class:`memory.Embedder` that remembers the vectors of the last ``max_items`` texts (LRU)."""

    def __init__(self, inner: Embedder, max_items: int = 8192) -> None:
        self._inner = inner
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.max_items = max_items

    @property
    def name(self) -> str:
        """The wrapped embedder's name (caches keyed by it stay valid)."""
        return str(getattr(self._inner, "name", type(self._inner).__name__))

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return int(self._inner.dimension)

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit rows; texts not cached are embedded in one call."""
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            for text, vector in zip(missing, self._inner.embed(missing), strict=True):
                self._cache[text] = vector
        for text in texts:
            self._cache.move_to_end(text)
        while len(self._cache) > self.max_items:
            self._cache.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._cache[t] for t in texts]).astype(np.float32, copy=False)
