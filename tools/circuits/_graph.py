"""The computation graph of a decoder-only transformer, as circuit discovery sees it.

Upstream nodes write into the residual stream: the token (and position) embeddings, every attention head
(its slice of the output projection, bias excluded) and every MLP. Downstream ports read from it: the query,
key and value input of every head, every MLP input and the logits (the final norm's input). The input of a port
is the sum of the outputs of every node that runs before it, so an edge is (upstream node, downstream port)
and an edge-level circuit gives each port its own copy of the residual stream (Knowledge Circuits; EAP-IG,
Hanna et al. 2024). Biases are constant across clean and corrupted runs and belong to no edge.

Node names: ``embed``, ``a{layer}.h{head}``, ``m{layer}``; port names add ``.q`` / ``.k`` / ``.v`` to a head,
and ``logits``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

__all__ = ["Edge", "Graph", "Node", "Port"]

NodeKind = Literal["embed", "head", "mlp"]
PortKind = Literal["q", "k", "v", "mlp", "logits"]


@dataclass(frozen=True)
class Node:
    """An upstream node: it writes into the residual stream."""

    kind: NodeKind
    layer: int = -1  # -1 for the embeddings
    head: int = -1  # -1 unless kind == "head"

    @property
    def name(self) -> str:
        if self.kind == "embed":
            return "embed"
        if self.kind == "head":
            return f"a{self.layer}.h{self.head}"
        return f"m{self.layer}"


@dataclass(frozen=True)
class Port:
    """A downstream port: it reads the residual stream."""

    kind: PortKind
    layer: int = -1  # the block it sits in; n_layers for the logits
    head: int = -1  # -1 unless kind is q / k / v

    @property
    def name(self) -> str:
        if self.kind == "logits":
            return "logits"
        if self.kind == "mlp":
            return f"m{self.layer}"
        return f"a{self.layer}.h{self.head}.{self.kind}"

    @property
    def node_name(self) -> str:
        """The name of the node this port feeds (a head for q / k / v)."""
        return self.name.rsplit(".", 1)[0] if self.kind in ("q", "k", "v") else self.name


@dataclass(frozen=True)
class Edge:
    """One edge with its attribution score (EAP-IG: estimated change of the metric if the edge is clean)."""

    upstream: str
    downstream: str
    score: float


@dataclass(frozen=True)
class Graph:
    """The full graph of a model with ``n_layers`` blocks of ``n_heads`` heads (attention before MLP)."""

    n_layers: int
    n_heads: int

    @cached_property
    def nodes(self) -> tuple[Node, ...]:
        """Upstream nodes in execution order: embed, then per layer its heads and its MLP."""
        out = [Node(kind="embed")]
        for layer in range(self.n_layers):
            out.extend(Node(kind="head", layer=layer, head=h) for h in range(self.n_heads))
            out.append(Node(kind="mlp", layer=layer))
        return tuple(out)

    @cached_property
    def ports(self) -> tuple[Port, ...]:
        """Downstream ports in execution order: per layer q, k, v of each head, then the MLP; the logits last."""
        out: list[Port] = []
        for layer in range(self.n_layers):
            for kind in ("q", "k", "v"):
                out.extend(Port(kind=kind, layer=layer, head=h) for h in range(self.n_heads))
            out.append(Port(kind="mlp", layer=layer))
        out.append(Port(kind="logits", layer=self.n_layers))
        return tuple(out)

    def feeds(self, node: Node, port: Port) -> bool:
        """Whether ``node`` runs before ``port`` (so their edge exists)."""
        if node.kind == "embed":
            return True
        if node.kind == "head":
            return port.layer > node.layer or (port.kind == "mlp" and port.layer == node.layer)
        return port.layer > node.layer

    @cached_property
    def n_edges(self) -> int:
        return sum(self.feeds(n, p) for n in self.nodes for p in self.ports)
