"""Circuits as JSON records, graph drawings (SVG / PNG) and faithfulness plots.

Drawings need matplotlib (imported here, on first use; ``ImportError`` when it is missing). Node colours:
embeddings grey, mover heads red, relation heads blue, MLPs green, logits black; edge width grows with
``|score|``, orange for a positive score (the edge pushes toward the gold object), purple for negative.
Every writer creates the parent directory and writes each file whole (to a temporary name, then renamed), so
a failure leaves no half-written file.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from tools.circuits._discover import Circuit
from tools.circuits._lens import LayerLens

__all__ = ["circuit_record", "plot_circuit", "plot_faithfulness", "plot_lens"]

COLOURS = {
    "embed": "#7f7f7f",
    "mover_head": "#d62728",
    "relation_head": "#1f77b4",
    "mlp": "#2ca02c",
    "logits": "#000000",
}


def circuit_record(circuit: Circuit, *, top_edges: int | None = None) -> dict[str, Any]:
    """A JSON-ready record: case, metrics, curve, kept edges with scores, node roles."""
    case = circuit.case
    attr = circuit.attribution
    return {
        "prompt": case.prompt,
        "subject": case.subject,
        "answer": case.answer,
        "corrupt_prompt": case.corrupt_prompt,
        "corrupt_answer": case.corrupt_answer,
        "gold_is_top": circuit.gold_is_top,
        "top_token": circuit.top_token,
        "metric_clean": attr.metric_clean,
        "metric_corrupt": attr.metric_corrupt,
        "n_edges_total": circuit.n_edges_total,
        "n_edges_kept": len(circuit.edges),
        "faithfulness": circuit.faithfulness,
        "curve": [{"fraction": f, "n_edges": k, "faithfulness": v} for f, k, v in circuit.curve],
        "mean_ablation_curve": [{"fraction": f, "n_edges": k, "faithfulness": v} for f, k, v in circuit.mean_curve],
        "lens": None
        if circuit.lens is None
        else {
            "gold_logprob": list(circuit.lens.logprob),
            "gold_rank": list(circuit.lens.rank),
            "heads_into_logit_diff": list(circuit.lens.heads),
            "mlps_into_logit_diff": list(circuit.lens.mlps),
            "moved_until": circuit.lens.moved_until,
        },
        "mlp_at_subject": list(attr.mlp_at_subject),
        "seconds": circuit.seconds,
        "nodes": dict(sorted(circuit.roles.items())),
        "edges": [
            {"upstream": e.upstream, "downstream": e.downstream, "score": e.score}
            for e in circuit.edges[: top_edges or len(circuit.edges)]
        ],
    }


def _save(fig: Any, paths: Sequence[Path]) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
        os.close(fd)
        try:
            fig.savefig(tmp, format=path.suffix.lstrip(".") or "png", bbox_inches="tight")
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _position(name: str, n_layers: int, n_heads: int) -> tuple[float, float]:
    """Heads of a layer side by side, its MLP to the right and above; embed at the bottom, logits on top."""
    if name == "embed":
        return (n_heads / 2, -1.0)
    if name == "logits":
        return (n_heads / 2, float(n_layers))
    if name.startswith("m"):
        return (float(n_heads) + 0.5, int(name[1:]) + 0.45)
    layer, head = (int(part[1:]) for part in name.split(".")[:2])
    return (float(head), float(layer))


def plot_circuit(circuit: Circuit, n_layers: int, n_heads: int, paths: Sequence[Path], title: str = "") -> None:
    """Draw the kept edges of ``circuit`` and write it to each of ``paths`` (``.svg`` / ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(1.4 * n_heads + 3, 1.2 * n_layers + 3))
    biggest = max((abs(e.score) for e in circuit.edges), default=1.0) or 1.0
    for edge in circuit.edges:
        target = edge.downstream.rsplit(".", 1)[0] if edge.downstream.count(".") == 2 else edge.downstream
        (x0, y0), (x1, y1) = _position(edge.upstream, n_layers, n_heads), _position(target, n_layers, n_heads)
        ax.annotate(
            "",
            xy=(x1, y1),
            xytext=(x0, y0),
            arrowprops={
                "arrowstyle": "-|>",
                "lw": 0.4 + 3.6 * abs(edge.score) / biggest,
                "color": "#ff7f0e" if edge.score >= 0 else "#9467bd",
                "alpha": 0.75,
                "connectionstyle": "arc3,rad=0.12",
            },
        )
    for name, role in circuit.roles.items():
        x, y = _position(name, n_layers, n_heads)
        ax.scatter([x], [y], s=520, color=COLOURS[role], zorder=3, edgecolors="white")
        ax.text(x, y, name, ha="center", va="center", fontsize=7, color="white", zorder=4)
    for kind, colour in COLOURS.items():
        ax.scatter([], [], color=colour, label=kind.replace("_", " "))
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.set_title(
        title
        or f"{circuit.case.prompt!r} -> {circuit.case.answer!r}\n"
        f"{len(circuit.edges)}/{circuit.n_edges_total} edges, faithfulness {circuit.faithfulness:.2f}",
        fontsize=9,
    )
    ax.set_xlim(-1, n_heads + 1.5)
    ax.set_ylim(-1.6, n_layers + 0.6)
    ax.axis("off")
    try:
        _save(fig, paths)
    finally:
        plt.close(fig)


def plot_faithfulness(
    curves: Sequence[Sequence[tuple[float, int, float]]],
    path: Path,
    title: str,
    target: float = 0.7,
    *,
    mean_curves: Sequence[Sequence[tuple[float, int, float]]] = (),
) -> None:
    """Faithfulness against the fraction of kept edges: one faint line per fact, the median in bold; with
    ``mean_curves`` also the median under mean ablation (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for curve in curves:
        ax.plot([f for f, _, _ in curve], [v for _, _, v in curve], color="#1f77b4", alpha=0.2, lw=0.8)
    if curves:
        xs = [f for f, _, _ in curves[0]]
        med = np.median(np.array([[v for _, _, v in c] for c in curves if len(c) == len(xs)]), axis=0)
        ax.plot(xs, med, color="#d62728", lw=2, marker="o", label="median (corrupt ablation)")
    full = [c for c in mean_curves if c]
    if full:
        xs = [f for f, _, _ in full[0]]
        med = np.nanmedian(np.array([[v for _, _, v in c] for c in full if len(c) == len(xs)]), axis=0)
        ax.plot(xs, med, color="#2ca02c", lw=2, ls="--", marker="s", label="median (mean ablation)")
    ax.axhline(target, color="grey", ls="--", lw=0.8)
    ax.axvline(0.1, color="grey", ls=":", lw=0.8)
    ax.set_xscale("log")
    ax.set_xlabel("fraction of edges kept")
    ax.set_ylabel("faithfulness")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    try:
        _save(fig, [path])
    finally:
        plt.close(fig)


def plot_lens(groups: Mapping[str, Sequence[LayerLens]], path: Path, title: str) -> None:
    """Per depth, the mean lens log-probability of the gold object (left) and per layer the mean direct
    contribution of heads (solid) and MLPs (dashed) to the logit difference (right), one colour per group."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    for (label, lenses), colour in zip(groups.items(), ("#1f77b4", "#d62728", "#2ca02c", "#9467bd"), strict=False):
        if not lenses:
            continue
        name = f"{label} (n={len(lenses)})"
        logprob = np.mean([lens.logprob for lens in lenses], axis=0)
        left.plot(range(len(logprob)), logprob, color=colour, marker="o", label=name)
        layers = range(len(lenses[0].heads))
        right.plot(
            layers, np.mean([lens.heads for lens in lenses], axis=0), color=colour, marker="o", label=f"{name} heads"
        )
        right.plot(
            layers,
            np.mean([lens.mlps for lens in lenses], axis=0),
            color=colour,
            ls="--",
            marker="s",
            label=f"{name} MLP",
        )
    left.set_xlabel("depth (0 = embeddings, l = after block l-1)")
    left.set_ylabel("log p(gold) by the logit lens")
    left.legend(fontsize=7)
    right.axhline(0, color="grey", lw=0.6)
    right.set_xlabel("layer")
    right.set_ylabel("direct contribution to logit(gold) - logit(foil)")
    right.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    try:
        _save(fig, [path])
    finally:
        plt.close(fig)
