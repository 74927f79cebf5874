"""Reciprocal rank fusion of ranked hit lists (Cormack, Clarke & Büttcher, SIGIR 2009)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from memory._records import MemoryHit

__all__ = ["reciprocal_rank_fusion"]


def reciprocal_rank_fusion(rankings: Sequence[Sequence[MemoryHit]], *, k: int = 60) -> list[MemoryHit]:
    """One ranking from several: each hit scores ``sum 1 / (k + rank)`` over the lists it is in (rank from 1).

    Hits are the same when they are the same item version. Scores are divided by the best possible sum
    (``len(rankings) / (k + 1)``), so they lie in (0, 1]: 1.0 is first in every list, and a hit first in one
    of two lists only scores about 0.5. Ties keep the order of first appearance (lists in order).

    Raises:
        ValueError: ``k`` < 1.

    Example:
        >>> fused = reciprocal_rank_fusion([vector_hits, lexical_hits])  # doctest: +SKIP
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"the fusion constant k must be a positive integer, got {k!r}")
    best = max(1, len(rankings)) / (k + 1)
    scores: dict[tuple[str, int], float] = {}
    first: dict[tuple[str, int], MemoryHit] = {}
    for ranking in rankings:
        for rank, hit in enumerate(ranking, start=1):
            key = (hit.item.id, hit.item.version)
            scores[key] = scores.get(key, 0.0) + 1.0 / (k + rank)
            first.setdefault(key, hit)
    order = sorted(first, key=lambda key: -scores[key])  # stable: ties keep first appearance
    return [replace(first[key], score=scores[key] / best) for key in order]
