"""The editing benchmark's table (plain text) and plot (PNG, metrics against T) from :func:`run_edit_bench` rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tools.errors import InvalidInputError

__all__ = ["PLOT_METRICS", "edit_bench_table", "plot_edit_bench"]

PLOT_METRICS = ("reliability", "generalization", "locality", "locality_vs_truth", "portability", "fluency")
_COLUMNS = (  # (row key, header, width)
    ("method", "method", 13),
    ("T", "T", 5),
    ("mode", "mode", 14),
    ("n", "n", 5),
    ("reliability", "rel", 6),
    ("generalization", "gen", 6),
    ("generalization_all", "gen_all", 7),
    ("locality", "loc", 6),
    ("locality_vs_truth", "loc_gt", 6),
    ("portability", "port", 6),
    ("fluency", "fluency", 7),
    ("seconds_per_edit", "s/edit", 7),
)


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = "-"
    elif isinstance(value, float):
        text = f"{value:.3f}" if abs(value) < 100 else f"{value:.0f}"
    else:
        text = str(value)
    return text.rjust(width) if isinstance(value, int | float) or value is None else text.ljust(width)


def _edit_modes(rows: Sequence[dict[str, Any]]) -> str:
    seen: dict[str, str] = {}
    for row in rows:
        if row["edit_mode"] == "sequential":
            seen[row["method"]] = "sequential (one edit call per fact)"
        else:
            size = {r["batch_size"] for r in rows if r["method"] == row["method"]}
            all_t = all(r["batch_size"] == r["T"] for r in rows if r["method"] == row["method"])
            seen[row["method"]] = "batch of all T in one call" if all_t else f"batches of {sorted(size)}"
    return "; ".join(f"{m}: {how}" for m, how in seen.items())


def edit_bench_table(rows: Sequence[dict[str, Any]]) -> str:
    """A fixed-width table with a header stating the protocol (scored after all T edits) and the edit modes.

    ``gen`` counts paraphrases the unedited model answered with the old object, ``gen_all`` all of them;
    ``loc`` is agreement with the unedited model, ``loc_gt`` accuracy against the ground truth.
    """
    if not rows:
        return "no rows"
    models = ", ".join(sorted({str(r["model"]) for r in rows}))
    capped = sorted({(r["T_requested"], r["T"]) for r in rows if r["T_requested"] != r["T"]})
    lines = [
        f"Knowledge editing on {models} — metrics scored after all T edits (sequential editing, fresh model per T)",
        f"edit calls: {_edit_modes(rows)}; cases: {rows[0]['selection']} (seeded sample)",
        "teacher_forced = token accuracy of the target; generation = greedy exact match; gen = paraphrases the "
        "unedited model answered with the old object, gen_all = all; loc = unchanged vs unedited, loc_gt = vs truth",
    ]
    if capped:
        lines.append("T capped to the cases available: " + ", ".join(f"{a} -> {b}" for a, b in capped))
    # rows of a Chinese benchmark carry CKnowEdit's category (edit success = rel): one more column
    columns = ((("category", "category", 18),) if any("category" in r for r in rows) else ()) + _COLUMNS
    lines.append("  ".join(h.ljust(w) if k in ("method", "mode", "category") else h.rjust(w) for k, h, w in columns))
    for row in rows:
        lines.append("  ".join(_cell(row.get(k), w) for k, _, w in columns))
    return "\n".join(lines)


def plot_edit_bench(rows: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """One panel per metric of :data:`PLOT_METRICS` against T (log scale), a line per method and mode.

    Raises:
        InvalidInputError: no rows.
        ImportError: matplotlib is not installed (the caller decides whether that matters).
    """
    if not rows:
        raise InvalidInputError("no rows to plot")
    import matplotlib

    matplotlib.use("Agg")  # files only, no display
    import matplotlib.pyplot as plt

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7), constrained_layout=True, sharex=True)
    series: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        series.setdefault((str(row["method"]), str(row["mode"])), []).append(row)
    methods = list(dict.fromkeys(method for method, _ in series))
    palette = plt.get_cmap("tab10" if len(methods) <= 10 else "tab20")
    colour = {method: palette(i % palette.N) for i, method in enumerate(methods)}  # one colour per method
    for ax, metric in zip(axes.flat, PLOT_METRICS, strict=True):
        for (method, mode), points in series.items():
            points = sorted(points, key=lambda r: r["T"])
            xs = [r["T"] for r in points if r.get(metric) is not None]
            ys = [r[metric] for r in points if r.get(metric) is not None]
            if xs:
                style = "-" if mode == "generation" else "--"  # one line style per mode
                ax.plot(xs, ys, style, color=colour[method], marker="o", label=f"{method} ({mode.replace('_', '-')})")
        ax.set_title(metric.replace("_", " "))
        ax.set_xscale("log")
        ax.set_xlabel("T (edits, scored after the last)")
        if metric != "fluency":
            ax.set_ylim(-0.02, 1.02)
        ax.grid(alpha=0.3)
    for ax in axes[0]:
        ax.set_xlabel("")  # the x axis is shared: label the bottom row only
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(4, len(labels)))
    models = ", ".join(sorted({str(r["model"]) for r in rows}))
    fig.suptitle(f"Knowledge editing on {models}: metrics after all T edits")
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
