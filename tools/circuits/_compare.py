"""Which edges change between two circuits of the same case (before / after an edit, Knowledge Circuits §5).

:func:`compare_circuits` contrasts the kept edges (Jaccard overlap, edges gained and lost) and the edges whose
EAP-IG score moved most over the full graph. Both circuits must be of the same graph (same model shape).
"""

from __future__ import annotations

from dataclasses import dataclass

from tools.circuits._discover import Circuit
from tools.errors import InvalidInputError

__all__ = ["CircuitDiff", "compare_circuits"]


@dataclass(frozen=True)
class CircuitDiff:
    """Kept-edge overlap of circuits ``a`` and ``b`` and the largest score changes (``b - a``)."""

    jaccard: float
    gained: tuple[tuple[str, str], ...]  # kept in b, not in a
    lost: tuple[tuple[str, str], ...]  # kept in a, not in b
    changed: tuple[tuple[str, str, float, float], ...]  # (upstream, downstream, score a, score b), |b - a| first


def compare_circuits(a: Circuit, b: Circuit, *, top: int = 10) -> CircuitDiff:
    """Compare two circuits over the same graph; :class:`InvalidInputError` when the graphs differ."""
    scores_a = {(e.upstream, e.downstream): e.score for e in a.attribution.edges}
    scores_b = {(e.upstream, e.downstream): e.score for e in b.attribution.edges}
    if scores_a.keys() != scores_b.keys():
        raise InvalidInputError("the two circuits are over different graphs (models of different shapes)")
    kept_a = {(e.upstream, e.downstream) for e in a.edges}
    kept_b = {(e.upstream, e.downstream) for e in b.edges}
    union = kept_a | kept_b
    moved = sorted(scores_a, key=lambda k: -abs(scores_b[k] - scores_a[k]))[:top]
    return CircuitDiff(
        jaccard=len(kept_a & kept_b) / len(union) if union else 1.0,
        gained=tuple(sorted(kept_b - kept_a)),
        lost=tuple(sorted(kept_a - kept_b)),
        changed=tuple((u, d, scores_a[(u, d)], scores_b[(u, d)]) for u, d in moved),
    )
