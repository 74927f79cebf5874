"""Edge selection: greedy from the logits keeps only edges that reach them; ``top`` keeps the ranking."""

from __future__ import annotations

import pytest

from tools.circuits import Edge, select_edges

EDGES = (
    Edge(upstream="embed", downstream="a0.h0.q", score=9.0),  # dangling until a0.h0 reaches the logits
    Edge(upstream="m0", downstream="logits", score=5.0),
    Edge(upstream="a0.h0", downstream="m0", score=-7.0),
    Edge(upstream="embed", downstream="m0", score=3.0),
    Edge(upstream="a0.h0", downstream="logits", score=1.0),
)


def _pairs(edges: tuple[Edge, ...]) -> list[tuple[str, str]]:
    return [(e.upstream, e.downstream) for e in edges]


def test_top_keeps_the_ranking() -> None:
    assert _pairs(select_edges(EDGES, 2, selection="top", rank="abs")) == [("embed", "a0.h0.q"), ("a0.h0", "m0")]
    assert _pairs(select_edges(EDGES, 2, selection="top")) == [("embed", "a0.h0.q"), ("m0", "logits")]


def test_greedy_grows_from_the_logits() -> None:
    # signed: m0 -> logits first (the only live port), then embed -> m0 (3.0) before a0.h0 -> m0 (-7.0)
    assert _pairs(select_edges(EDGES, 3)) == [("m0", "logits"), ("embed", "m0"), ("a0.h0", "logits")]
    # the head is live now, so its query edge (the best score) comes next
    assert _pairs(select_edges(EDGES, 4))[-1] == ("embed", "a0.h0.q")
    # by |score|: the negative edge into the live MLP outranks embed -> m0
    assert _pairs(select_edges(EDGES, 3, rank="abs")) == [("m0", "logits"), ("a0.h0", "m0"), ("embed", "a0.h0.q")]


@pytest.mark.parametrize("rank", ["signed", "abs"])
def test_greedy_is_a_prefix_of_itself_and_keeps_every_edge_at_full_size(rank: str) -> None:
    full = select_edges(EDGES, len(EDGES), rank=rank)  # type: ignore[arg-type]
    assert sorted(_pairs(full)) == sorted(_pairs(EDGES))
    for k in range(len(EDGES)):
        assert select_edges(EDGES, k, rank=rank) == full[:k]  # type: ignore[arg-type]
