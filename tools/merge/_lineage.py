"""The lineage tree of a kinship-guided merge search as a PNG: generation (x) vs fitness (y), parent edges."""

from __future__ import annotations

from pathlib import Path

from tools.merge._evolve import EvolveResult

__all__ = ["plot_lineage"]


def plot_lineage(results: dict[str, EvolveResult], path: str | Path) -> Path:
    """One panel per search (e.g. ``{"kinship exploration": r1, "no exploration": r2}``); returns ``path``.

    Each node is a dot at (generation, fitness); an edge joins a merge to its two parents, labelled with the
    parents' kinship (PCC); exploration merges are drawn in red; the best node is ringed.

    Raises:
        ImportError: matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4.5), squeeze=False, sharey=True)
    for ax, (title, result) in zip(axes[0], results.items(), strict=True):
        where = {}
        per_gen: dict[int, int] = {}
        for node in result.nodes:
            slot = per_gen.get(node.generation, 0)
            per_gen[node.generation] = slot + 1
            where[node.name] = (node.generation + 0.06 * slot, node.fitness.fitness)
        for node in result.nodes:
            x, y = where[node.name]
            color = {"variant": "tab:blue", "top_k": "tab:green", "explore": "tab:red"}[node.how]
            for parent in node.parents:
                px, py = where[parent]
                ax.plot([px, x], [py, y], color=color, alpha=0.4, lw=1)
            if node.kinship is not None:
                ax.annotate(f"{node.kinship:.2f}", (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            ax.scatter([x], [y], color=color, s=18, zorder=3)
        bx, by = where[result.best.name]
        ax.scatter([bx], [by], s=120, facecolors="none", edgecolors="k", zorder=4)
        ax.set_title(f"{title}: best {result.best.name} ({result.best.fitness.fitness:.3f})", fontsize=9)
        ax.set_xlabel("generation (labels: kinship PCC of the parents)")
        ax.set_ylabel("fitness")
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
