"""Edge attribution patching with integrated gradients (EAP-IG) and the faithfulness of edge circuits.

EAP-IG (Hanna, Pezzelle & Belinkov 2024) scores the edge ``u -> p`` (node ``u``, port ``p``) as::

    score(u, p) = sum_{t, d} (a_u^clean - a_u^corrupt)[t, d] * mean_k dM/d(in_p)[t, d] at x_k

where ``x_k`` are ``steps`` runs whose input embeddings go from the corrupted to the clean prompt
(``alpha = k / steps``, k = 1..steps) and ``M`` is the metric: the logit of the gold object's first token
minus that of the corrupted prompt's object (Knowledge Circuits corrupts the subject with another subject of
the same relation). nnsight gives no edge attribution, so this module writes it, on top of
:class:`~tools.circuits._runner.GraphRunner`.

Faithfulness of a circuit (a set of kept edges): every port reads the clean output of kept edges and a
reference output of every other edge, ``(M_circuit - M_empty) / (M_full - M_empty)`` where ``M_empty`` keeps no
edge. Corrupt ablation (the default) takes the corrupted run's outputs as reference, so ``M_empty = M_corrupt``;
mean ablation takes each node's output averaged over reference prompts of the same length (other subjects of
the relation), position by position. Keeping every edge gives exactly 1, keeping none exactly 0.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from tools.circuits._graph import Edge, Port
from tools.circuits._runner import GraphRunner, RunResult

__all__ = ["Attribution", "attribute", "circuit_metrics"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribution:
    """EAP-IG scores of every edge of the graph for one clean / corrupted prompt pair.

    ``edges`` is sorted by decreasing ``|score|``. ``metric_clean`` / ``metric_corrupt`` are ``M`` of the
    unpatched runs; ``mlp_at_subject[l]`` is MLP ``l``'s attribution restricted to the subject's last token
    (summed over its outgoing edges), the knowledge-location signal for editing.
    """

    edges: tuple[Edge, ...]
    metric_clean: float
    metric_corrupt: float
    mlp_at_subject: tuple[float, ...]
    seconds: float


def _metric(res: RunResult, gold: int, foil: int) -> torch.Tensor:
    return res.logits[:, gold] - res.logits[:, foil]  # (B,)


def attribute(
    runner: GraphRunner,
    clean_ids: torch.Tensor,
    corrupt_ids: torch.Tensor,
    gold: int,
    foil: int,
    *,
    subject_last: int,
    steps: int = 5,
    runs: tuple[RunResult, RunResult] | None = None,
) -> Attribution:
    """EAP-IG over the full graph. ``clean_ids`` / ``corrupt_ids``: ``(1, T)`` of equal length.

    ``runs``: the plain runs of the clean and corrupted prompts when the caller has them already.
    The model is unchanged (its weights are only read); no gradient is left on its parameters.
    """
    import time

    start = time.perf_counter()
    graph = runner.graph
    if runs is None:
        with torch.no_grad():
            runs = (runner.run(clean_ids), runner.run(corrupt_ids))
    clean, corrupt = runs
    diffs = {name: (clean.outputs[name] - corrupt.outputs[name])[0] for name in clean.outputs}  # (T, D)
    alphas = torch.arange(1, steps + 1, dtype=clean.outputs["embed"].dtype, device=clean_ids.device) / steps
    e_clean, e_corrupt = clean.outputs["embed"], corrupt.outputs["embed"]
    embeds = e_corrupt + alphas[:, None, None] * (e_clean - e_corrupt)  # (steps, T, D)
    leaves = {
        p.name: torch.zeros(steps, clean_ids.shape[1], runner.d_model, device=clean_ids.device, requires_grad=True)
        for p in graph.ports
    }
    params = list(runner.model.parameters())
    flags = [param.requires_grad for param in params]
    for param in params:
        param.requires_grad_(False)  # restored below: gradients only for the port leaves
    try:
        with torch.enable_grad():
            res = runner.run(clean_ids.expand(steps, -1), embeds=embeds, delta=lambda p, o: leaves[p.name])
            grads = torch.autograd.grad(_metric(res, gold, foil).sum(), list(leaves.values()))
    finally:
        for param, flag in zip(params, flags, strict=True):
            param.requires_grad_(flag)
    mean_grad = {p.name: g.mean(0) for p, g in zip(graph.ports, grads, strict=True)}  # (T, D)
    edges: list[Edge] = []
    at_subject = [0.0] * graph.n_layers
    for node in graph.nodes:
        for port in graph.ports:
            if not graph.feeds(node, port):
                continue
            contrib = diffs[node.name] * mean_grad[port.name]
            edges.append(Edge(upstream=node.name, downstream=port.name, score=float(contrib.sum())))
            if node.kind == "mlp":
                at_subject[node.layer] += float(contrib[subject_last].sum())
    edges.sort(key=lambda e: -abs(e.score))
    return Attribution(
        edges=tuple(edges),
        metric_clean=float(_metric(clean, gold, foil)[0]),
        metric_corrupt=float(_metric(corrupt, gold, foil)[0]),
        mlp_at_subject=tuple(at_subject),
        seconds=time.perf_counter() - start,
    )


def circuit_metrics(
    runner: GraphRunner,
    clean_ids: torch.Tensor,
    corrupt_ids: torch.Tensor,
    gold: int,
    foil: int,
    circuits: Sequence[frozenset[tuple[str, str]]],
    *,
    reference_ids: torch.Tensor | None = None,
    corrupt_run: RunResult | None = None,
) -> list[float]:
    """``M`` of the clean prompt run with only each circuit's edges clean (one batched pass for all).

    Every other edge reads the corrupted run's output (corrupt ablation; ``corrupt_run`` when the caller has
    it), or with ``reference_ids`` ``(R, T)`` each node's output averaged over those R prompts (mean ablation).
    """
    if not circuits:
        return []
    graph = runner.graph
    n = len(circuits)
    with torch.no_grad():
        if reference_ids is None:
            reference = (corrupt_run or runner.run(corrupt_ids)).outputs
        else:
            reference = {k: v.mean(0, keepdim=True) for k, v in runner.run(reference_ids).outputs.items()}
        # ablated[port][node] = (n,) 1.0 where the edge is outside circuit b
        ablated: dict[str, dict[str, torch.Tensor]] = {}
        for port in graph.ports:
            row = {}
            for node in graph.nodes:
                if graph.feeds(node, port):
                    row[node.name] = torch.tensor(
                        [0.0 if (node.name, port.name) in c else 1.0 for c in circuits], device=clean_ids.device
                    )
            ablated[port.name] = row

        def delta(port: Port, outs: dict[str, torch.Tensor]) -> torch.Tensor | None:
            total: torch.Tensor | None = None
            for name, mask in ablated[port.name].items():
                if not bool(mask.any()):
                    continue
                term = mask[:, None, None].to(outs[name].dtype) * (outs[name] - reference[name])
                total = -term if total is None else total - term
            return total

        res = runner.run(clean_ids.expand(n, -1), delta=delta)
    return [float(v) for v in _metric(res, gold, foil)]
