"""An embedder that embeds each text once: a bounded, thread-safe memo in front of another embedder.

One question is searched in several memory scopes, linked, and judged by the request guard; each of
those asks the embedder for the same text. Behind :class:`MemoEmbedder` the model runs once per distinct
text (until it falls out of the memo), and the memo counts what the model actually did, so a service can
report embeddings per ask.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

    from memory.embedder import Embedder

__all__ = ["EmbedderCounts", "MemoEmbedder"]


@dataclass(frozen=True)
class EmbedderCounts:
    """What an embedder did since it was built.

    ``calls``: batches the model ran; ``texts``: texts it embedded; ``reused``: texts answered from the memo.
    """

    calls: int = 0
    texts: int = 0
    reused: int = 0


class MemoEmbedder:
    """An :class:`~memory.Embedder` remembering the vectors of the last ``max_items`` texts (LRU).

    The vectors are the wrapped embedder's own (the first computation of a text is kept), so a caller sees
    no difference except speed. Texts not remembered are embedded in one call to the wrapped embedder.
    Safe to share between threads: the memo is updated under a lock, the model runs outside it.

    Args:
        inner: the embedder doing the work.
        max_items: texts remembered (4,096 MiniLM vectors are 6 MB).

    Example:
        >>> memo = MemoEmbedder(SentenceTransformerEmbedder())  # doctest: +SKIP
        >>> _ = memo.embed(["Who is the CEO of Nokia?"]); _ = memo.embed(["Who is the CEO of Nokia?"])  # doctest: +SKIP
        >>> memo.counts()  # doctest: +SKIP
        EmbedderCounts(calls=1, texts=1, reused=1)
    """

    def __init__(self, inner: Embedder, max_items: int = 4096) -> None:
        self._inner = inner
        self._memo: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.max_items = max_items
        self._calls = self._texts = self._reused = 0

    @property
    def inner(self) -> Embedder:
        """The wrapped embedder."""
        return self._inner

    @property
    def name(self) -> str:
        """The wrapped embedder's name (caches keyed by it stay valid)."""
        return str(getattr(self._inner, "name", type(self._inner).__name__))

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return int(self._inner.dimension)

    def counts(self) -> EmbedderCounts:
        """Batches and texts the wrapped model embedded, and texts answered from the memo, so far."""
        with self._lock:
            return EmbedderCounts(calls=self._calls, texts=self._texts, reused=self._reused)

    def clear(self) -> None:
        """Forget every remembered vector (the counts stay): the next texts are embedded afresh."""
        with self._lock:
            self._memo.clear()

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """``(len(texts), dimension)`` float32 unit rows; errors are the wrapped embedder's (nothing is kept)."""
        import numpy as np

        if isinstance(texts, str):  # let the wrapped embedder reject it with its own message
            return self._inner.embed(texts)
        with self._lock:
            missing = list(dict.fromkeys(t for t in texts if t not in self._memo))
        fresh = self._inner.embed(missing) if missing else None
        with self._lock:
            if fresh is not None:
                self._calls += 1
                self._texts += len(missing)
                for text, vector in zip(missing, fresh, strict=True):
                    self._memo.setdefault(text, vector)
            self._reused += len(texts) - len(missing)
            rows = [self._memo.get(t) for t in texts]
            for text in texts:
                if text in self._memo:
                    self._memo.move_to_end(text)
            while len(self._memo) > self.max_items:
                self._memo.popitem(last=False)
        mine = dict(zip(missing, fresh, strict=True)) if fresh is not None else {}
        gone = [t for r, t in zip(rows, texts, strict=True) if r is None and t not in mine]
        if gone:  # evicted by other threads between the two looks: embed those again, outside the memo
            mine.update(zip(gone, self._inner.embed(gone), strict=True))
        rows = [r if r is not None else mine[t] for r, t in zip(rows, texts, strict=True)]
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack(rows).astype(np.float32, copy=False)  # type: ignore[arg-type]
