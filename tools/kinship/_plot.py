"""Heatmaps of a kinship report: the pairwise whole-model PCC matrix, and PCC per layer for each pair."""

from __future__ import annotations

import math
from pathlib import Path

from tools.kinship._kinship import KinshipReport

__all__ = ["plot_kinship"]


def plot_kinship(report: KinshipReport, path: str | Path) -> Path:
    """Write a PNG with two heatmaps (models x models PCC; pairs x layers PCC) to ``path``; returns it.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = [Path(m).name for m in report.models]
    n = len(names)
    matrix = np.eye(n)
    index = {m: i for i, m in enumerate(report.models)}
    for p in report.pairs:
        i, j = index[p.a], index[p.b]
        matrix[i, j] = matrix[j, i] = p.whole.pcc
    layers = list(report.pairs[0].per_layer)
    per_layer = np.array([[p.per_layer[k].pcc for k in layers] for p in report.pairs])
    labels = [f"{Path(p.a).name}~{Path(p.b).name}" for p in report.pairs]

    fig, (left, right) = plt.subplots(1, 2, figsize=(6 + 0.4 * n + 0.5 * len(layers), 1.5 + 0.35 * max(n, len(labels))))
    im = left.imshow(matrix, cmap="viridis", vmin=-1, vmax=1)
    left.set_xticks(range(n), names, rotation=60, ha="right", fontsize=7)
    left.set_yticks(range(n), names, fontsize=7)
    left.set_title("kinship (PCC of deltas)")
    for i in range(n):
        for j in range(n):
            if n <= 12 and not math.isnan(matrix[i, j]):
                left.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=6, color="w")
    right.imshow(per_layer, cmap="viridis", vmin=-1, vmax=1, aspect="auto")
    right.set_xticks(range(len(layers)), layers, rotation=60, ha="right", fontsize=7)
    right.set_yticks(range(len(labels)), labels, fontsize=6)
    right.set_title("PCC per layer")
    fig.colorbar(im, ax=[left, right], shrink=0.8)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return out
