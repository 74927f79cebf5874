"""Which edges a circuit of ``k`` edges keeps: a greedy, output-connected choice from the EAP-IG scores.

Taking the top ``k`` edges by ``|score|`` alone (``"top"``) spends part of the budget on *dangling* edges: an
edge ``u -> p`` whose port's node (head or MLP) has no kept edge towards the logits changes nothing the logits
read, because that node's own output is read corrupted everywhere else. Hanna et al. (2024) build EAP-IG
circuits greedily from the logits instead; so does ``"greedy"`` here:

1. the logits are live; a head or MLP becomes live once one of its outgoing edges is kept;
2. repeatedly keep the highest-ranked edge whose downstream port belongs to a live node, until ``k`` edges.

Edges are ranked by ``score`` (signed: an edge that pushes away from the gold object is kept only after every
edge that pushes toward it) or by ``|score|`` (``rank="abs"``). Ties in the ranking keep the graph's order
(the attribution's edge order; Python's sort is stable), so the choice is deterministic.

Measured on LLaMA ``company_hq`` (40 seeded KNOWN facts, faithfulness >= 0.70 at <= 10% of 479 edges,
5 IG steps): top by ``|score|`` 0.825, top by score 0.925, greedy by ``|score|`` 0.875, greedy by score 0.925;
20 IG steps changed none of these by more than 0.05.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from tools.circuits._graph import Edge

__all__ = ["Rank", "Selection", "select_edges"]

Selection = Literal["greedy", "top"]
Rank = Literal["signed", "abs"]


def _port_node(port: str) -> str:
    """The node a port feeds: ``a1.h2.q`` -> ``a1.h2``; ``m3`` and ``logits`` are their own node."""
    return port.rsplit(".", 1)[0] if port.count(".") == 2 else port


def select_edges(
    edges: Sequence[Edge], k: int, *, selection: Selection = "greedy", rank: Rank = "signed"
) -> tuple[Edge, ...]:
    """The ``k`` kept edges (fewer only when no more edge connects to the logits), in the order they were kept."""
    ranked = sorted(edges, key=(lambda e: -e.score) if rank == "signed" else (lambda e: -abs(e.score)))
    if selection == "top":
        return tuple(ranked[:k])
    live = {"logits"}
    kept: list[Edge] = []
    rest = [(_port_node(e.downstream), e) for e in ranked]
    while len(kept) < k:
        # the first (highest-ranked) edge into a live node; a newly live node can unlock earlier-ranked edges,
        # so the scan restarts from the top each time (479 edges on the reference models: cheap)
        index = next((i for i, (node, _) in enumerate(rest) if node in live), None)
        if index is None:
            break
        edge = rest.pop(index)[1]
        kept.append(edge)
        live.add(edge.upstream)
    return tuple(kept)
