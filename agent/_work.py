"""What answering cost: asks, model batches and prompts, embedder batches and texts, counted per process.

The collector tallies its model calls as it makes them; the embedder's side comes from a
:class:`memory.MemoEmbedder` (texts it actually embedded, not the ones answered from its memo). A
service reports the totals in ``/v1/metrics`` and benchmarks report the difference over a run, divided by
its asks.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, fields

__all__ = ["WorkCounter", "WorkCounts"]


@dataclass(frozen=True)
class WorkCounts:
    """Totals since the agent was built (or a difference of two snapshots).

    ``model_batches``: calls to the model's batched ``generate`` / ``score`` (each runs the whole batch
    together); ``model_prompts``: rows in them (a prompt asked twice in one batch runs, and counts, once; a
    familiarity or pmi row read off the ``generate`` pass runs no forward of its own and is not counted).
    ``embed_batches`` / ``embed_texts``: calls to the embedding model and texts it embedded. ``batches``:
    collector runs (one per ask, or one per micro-batch of asks in the server).
    """

    asks: int = 0
    batches: int = 0
    model_batches: int = 0
    model_prompts: int = 0
    embed_batches: int = 0
    embed_texts: int = 0

    def __sub__(self, other: WorkCounts) -> WorkCounts:
        return WorkCounts(**{f.name: getattr(self, f.name) - getattr(other, f.name) for f in fields(self)})

    def per_ask(self) -> dict[str, float]:
        """Each count divided by the asks (0 when there were none)."""
        n = max(1, self.asks)
        return {f.name: round(getattr(self, f.name) / n, 3) for f in fields(self) if f.name != "asks"}


class WorkCounter:
    """A thread-safe tally of the collector's asks and model calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._asks = self._batches = self._model_batches = self._model_prompts = 0

    def add(self, *, asks: int = 0, batches: int = 0, model_batches: int = 0, model_prompts: int = 0) -> None:
        with self._lock:
            self._asks += asks
            self._batches += batches
            self._model_batches += model_batches
            self._model_prompts += model_prompts

    def counts(self, embed_batches: int = 0, embed_texts: int = 0) -> WorkCounts:
        """A snapshot, with the embedder's counts (kept by the embedder) filled in by the caller."""
        with self._lock:
            return WorkCounts(
                asks=self._asks,
                batches=self._batches,
                model_batches=self._model_batches,
                model_prompts=self._model_prompts,
                embed_batches=embed_batches,
                embed_texts=embed_texts,
            )
