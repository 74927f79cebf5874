"""The WISE paper's Table 2 on the reference world: lifelong (sequential) editing at T = 1, 10, 100, 1000.

A grid of cells ``(method, model, T)``. Each cell edits a freshly loaded reference model with the first ``T``
edits of a seeded sequence, one ``compute`` + ``apply`` per fact (``edit_mode="sequential"`` for every method,
MEMIT included, as in the paper), and scores all ``T`` facts after the last edit (:func:`run_edit_bench`):
reliability, generalization and locality, greedy (``generation``) and teacher-forced, seconds per edit, the
cell's wall time and its peak memory.

Cases come from the lifelong pool (:func:`eval.world._lifelong.lifelong_pool`: the world's 600 edits and one
edit of every other KNOWN fact), filtered per model to the edits whose prompt the unedited model answers with
the old object; the sequence for ``T`` is the first ``T`` of that seeded order, so a smaller ``T`` is a prefix of
a larger one. A ``T`` above the number of qualifying edits raises :class:`~tools.errors.NotEnoughEditsError`
(nothing is edited) instead of being capped.

Resumable: each finished cell is written to ``<out>/cells/<model>__<method>__T<T>.json`` and skipped when the
grid runs again; a failed cell writes ``.error.json`` beside it and is tried again next time. With
``GridSettings.checkpoint_dir`` a cell is resumable inside too: its edited model and run state are saved every
``checkpoint_every`` edits under ``<checkpoint_dir>/<cell key>`` (:mod:`eval.editing._checkpoint`), a killed cell
goes on from the last save when the grid runs again, and the directory is removed once the cell is written. A
resumed cell's ``wall_seconds`` is its last part's wall time plus the edit seconds saved by the parts before
(their loading and scoring set-up, repeated by every part, is not counted twice); ``parts`` says how many
processes it took. By default every
cell runs in its own interpreter (``isolate=True``), so its peak resident memory (``ru_maxrss``) is its own; on
an accelerator ``peak_gpu_mb`` is ``torch.cuda.max_memory_allocated`` of that process.

Outputs in ``<out>``: ``results.json`` (every cell, and the number of qualifying edits per model),
``table.md`` (Table 2's layout, one block per model and scoring) and ``t_curve.png`` (mean of rel / gen / loc
against T, a line per method, one panel per model and scoring).
"""

from __future__ import annotations

import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tools.errors import FactagentError, InvalidInputError

__all__ = [
    "LIFELONG_METHODS",
    "LIFELONG_MODELS",
    "LIFELONG_T",
    "GridCell",
    "GridSettings",
    "known_edit_count",
    "lifelong_cases",
    "lifelong_table",
    "plot_t_curve",
    "run_cell",
    "run_grid",
]
logger = logging.getLogger(__name__)

LIFELONG_METHODS = ("ft-l", "rome", "memit", "grace", "wise", "wise-retrieve")
LIFELONG_MODELS = ("gpt2", "llama")
LIFELONG_T = (1, 10, 100, 1000)
_METRICS = ("reliability", "generalization", "locality")
_CELL_MARK = "LIFELONG_CELL "  # the child's result line on stdout


@dataclass(frozen=True)
class GridCell:
    """One cell of the grid: ``method`` on reference model ``model`` (``gpt2`` | ``llama``) after ``T`` edits."""

    method: str
    model: str
    T: int  # the papers' T

    @property
    def key(self) -> str:
        """File stem of the cell's result."""
        return f"{self.model}__{self.method}__T{self.T}"


@dataclass(frozen=True)
class GridSettings:
    """What every cell shares."""

    device: str | None = None  # where models load (default: the best available); never assumed
    seed: int = 0  # the edit sequence's shuffle seed
    cache_dir: str | None = None  # key statistics of ROME / MEMIT / WISE (shared between cells)
    hparams: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # method -> overrides
    timeout: float = 4 * 3600  # seconds per isolated cell
    checkpoint_dir: str | None = None  # cells save their state there (one subdirectory each) and resume from it
    checkpoint_every: int = 100  # edits between two saves of a cell's edited model


def _model_dir(model: str) -> Path:
    from eval.world._paths import ALL_MODEL_NAMES, MODELS_DIR

    if model not in ALL_MODEL_NAMES:
        raise InvalidInputError(f"unknown reference model {model!r} (known: {', '.join(ALL_MODEL_NAMES)})")
    return MODELS_DIR / ALL_MODEL_NAMES[model]


def lifelong_cases(model: str) -> tuple[list[Any], list[str]]:
    """The lifelong pool as edit cases for ``model``'s prompt format, and the corpus (the world's documents)."""
    from eval.editing._datasets import world_edit_cases
    from eval.world import load_world
    from eval.world._lifelong import lifelong_pool
    from eval.world._pipeline import DATA_DIR
    from tools.lm import PromptFormat

    world = lifelong_pool(load_world(DATA_DIR), DATA_DIR)
    return world_edit_cases(world, PromptFormat.load(_model_dir(model))), [d.text for d in world.documents]


def known_edit_count(model: str, device: str | None = None) -> dict[str, int]:
    """How many edits of the lifelong pool ``model`` answers with the old object (greedy): ``{"pool", "known",
    "known_world"}`` (``known_world``: of the world's own 600)."""
    from eval.editing._runner import select_cases
    from tools.lm import HFLanguageModel

    cases, _ = lifelong_cases(model)
    lm = HFLanguageModel.load(_model_dir(model), device=device)
    chosen = select_cases(lm, cases, len(cases), seed=0)
    world_ids = {f"e{i:04d}" for i in range(600)}
    return {"pool": len(cases), "known": len(chosen), "known_world": sum(c.id in world_ids for c in chosen)}


def _peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def run_cell(cell: GridCell, settings: GridSettings) -> dict[str, Any]:
    """Edit and score one cell in this process; returns its record (``rows``: the two scoring modes).

    Raises:
        NotEnoughEditsError: ``cell.T`` exceeds the edits the model answers correctly (nothing edited).
        UnknownEditorError, InvalidEditError: a bad method or hyperparameter.
    """
    import torch

    from eval.editing._checkpoint import BenchCheckpoint
    from eval.editing._runner import run_edit_bench

    cases, corpus = lifelong_cases(cell.model)
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    checkpoint, earlier_seconds, earlier_parts = None, 0.0, 0
    if settings.checkpoint_dir is not None:
        checkpoint = BenchCheckpoint(Path(settings.checkpoint_dir) / cell.key, every=settings.checkpoint_every)
        earlier_seconds, earlier_parts = _earlier_parts(checkpoint.directory)
    start = time.perf_counter()
    rows = run_edit_bench(
        _model_dir(cell.model),
        cell.method,
        [cell.T],
        cell.T,
        cases,
        edit_mode="sequential",
        seed=settings.seed,
        corpus=corpus,
        corpus_name="world-documents",
        cache_dir=settings.cache_dir,
        device=settings.device,
        hparams=dict(settings.hparams.get(cell.method, {})),
        fluency_tokens=8,  # fluency is not in Table 2: keep its generation short
        strict_t=True,
        checkpoint=checkpoint,
    )
    wall = time.perf_counter() - start + earlier_seconds
    gpu = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_initialized() else None
    if checkpoint is not None:  # the cell's record is written by the caller; its saved states are done with
        shutil.rmtree(checkpoint.directory, ignore_errors=True)
    return {
        **asdict(cell),
        "rows": rows,
        "wall_seconds": round(wall, 2),
        "parts": earlier_parts + 1,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "peak_gpu_mb": None if gpu is None else round(gpu, 1),
        "device": settings.device or "auto",
        "seed": settings.seed,
    }


def _earlier_parts(directory: Path) -> tuple[float, int]:
    """``(seconds, parts)``: edit seconds saved by the killed processes of a resumed cell, and how many there were
    (0 for a fresh cell).

    ``parts.json`` counts the processes that opened the checkpoint; ``state.json`` holds the edit seconds of the T
    in progress up to its last save (a cell has one T).
    """
    directory.mkdir(parents=True, exist_ok=True)
    parts_path = directory / "parts.json"
    parts = json.loads(parts_path.read_text(encoding="utf-8"))["parts"] if parts_path.is_file() else 0
    seconds = 0.0
    if (directory / "state.json").is_file():
        seconds = float(json.loads((directory / "state.json").read_text(encoding="utf-8"))["state"]["seconds"])
    _write_json(parts_path, {"parts": parts + 1})
    return seconds, int(parts)


def _run_isolated(cell: GridCell, settings: GridSettings) -> dict[str, Any]:
    """:func:`run_cell` in a fresh interpreter (its own peak memory); errors come back as ``{"error": ...}``."""
    repo = str(Path(__file__).resolve().parents[2])
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [env.get("PYTHONPATH")])])
    spec = json.dumps({"cell": asdict(cell), "settings": asdict(settings) | {"hparams": dict(settings.hparams)}})
    argv = [sys.executable, "-m", "eval.editing._lifelong", spec]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=settings.timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {settings.timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith(_CELL_MARK):
            return dict(json.loads(line[len(_CELL_MARK) :]))
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return {"error": f"exit {done.returncode}: {tail}"}


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def run_grid(
    cells: Sequence[GridCell],
    out_dir: str | Path,
    settings: GridSettings | None = None,
    *,
    isolate: bool = True,
    on_cell: Callable[[GridCell, str], None] | None = None,
) -> dict[str, Any]:
    """Run every cell not finished yet, then write ``results.json``, ``table.md`` and ``t_curve.png``.

    Args:
        cells: the grid (any order; cached cells are read, not run).
        out_dir: where cells and results go (created).
        settings: shared settings.
        isolate: each cell in its own interpreter (default; peak memory per cell), else in this process.
        on_cell: called with each cell and ``"cached"`` | ``"done"`` | ``"failed"`` (progress bars).

    Returns:
        The content of ``results.json``: ``{"cells": [...], "failed": [...], "known_edits": {model: {...}}}``.

    Raises:
        InvalidInputError: no cells.
    """
    if not cells:
        raise InvalidInputError("no cells to run")
    settings = settings or GridSettings()
    out = Path(out_dir)
    (out / "cells").mkdir(parents=True, exist_ok=True)
    records, failed = [], []
    for cell in cells:
        path = out / "cells" / f"{cell.key}.json"
        if path.is_file():
            records.append(json.loads(path.read_text(encoding="utf-8")))
            status = "cached"
        else:
            if isolate:
                record = _run_isolated(cell, settings)
            else:
                try:
                    record = run_cell(cell, settings)
                except FactagentError as exc:  # one refused cell must not lose the others: recorded
                    record = {"error": f"{type(exc).__name__}: {exc}"}
            if "error" in record:
                _write_json(out / "cells" / f"{cell.key}.error.json", {**asdict(cell), **record})
                failed.append({**asdict(cell), "error": record["error"]})
                logger.warning("cell %s failed: %s", cell.key, record["error"])
                status = "failed"
            else:
                _write_json(path, record)
                (out / "cells" / f"{cell.key}.error.json").unlink(missing_ok=True)
                records.append(record)
                status = "done"
        if on_cell is not None:
            on_cell(cell, status)
    known = _known_counts(out, sorted({c.model for c in cells}), settings)
    results = {"cells": records, "failed": failed, "known_edits": known}
    _write_json(out / "results.json", results)
    (out / "table.md").write_text(lifelong_table(results), encoding="utf-8")
    try:
        if records:  # nothing finished: no curve
            plot_t_curve(records, out / "t_curve.png")
    except ImportError:
        logger.warning("matplotlib is not installed: no t_curve.png written")
    return results


def _known_counts(out: Path, models: list[str], settings: GridSettings) -> dict[str, dict[str, int]]:
    """Qualifying edits per model, computed once and cached in ``known_edits.json``."""
    path = out / "known_edits.json"
    counts: dict[str, dict[str, int]] = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    missing = [m for m in models if m not in counts]
    for model in missing:
        counts[model] = known_edit_count(model, settings.device)
    if missing:
        _write_json(path, counts)
    return counts


def _mode_rows(records: Sequence[Mapping[str, Any]], mode: str) -> dict[tuple[str, str, int], Mapping[str, Any]]:
    """(model, method, T) -> the cell's row of one scoring mode, with the cell's wall time and peak memory."""
    out: dict[tuple[str, str, int], Mapping[str, Any]] = {}
    for rec in records:
        for row in rec["rows"]:
            if row["mode"] == mode:
                extra = {"wall_seconds": rec["wall_seconds"], "peak_rss_mb": rec["peak_rss_mb"]}
                out[(rec["model"], rec["method"], int(rec["T"]))] = {**row, **extra}
    return out


def _mean(row: Mapping[str, Any]) -> float:
    return sum(float(row[m] or 0.0) for m in _METRICS) / len(_METRICS)


def lifelong_table(results: Mapping[str, Any]) -> str:
    """Markdown: per model and scoring, a row per method and Rel. / Gen. / Loc. / Avg. for each T (Table 2's
    layout), then seconds per edit, wall time and peak memory per cell."""
    records = results["cells"]
    lines = []
    models = list(dict.fromkeys(r["model"] for r in records))
    methods = [m for m in LIFELONG_METHODS if any(r["method"] == m for r in records)]
    methods += sorted({r["method"] for r in records} - set(methods))
    t_values = sorted({int(r["T"]) for r in records})
    for model in models:
        known = results.get("known_edits", {}).get(model)
        note = f" ({known['known']} of {known['pool']} pool edits answered correctly)" if known else ""
        for mode in ("generation", "teacher_forced"):
            table = _mode_rows(records, mode)
            lines.append(f"\n**{model}, {mode.replace('_', '-')}**{note}\n")
            head = "| method | " + " | ".join(f"T={t} Rel. | Gen. | Loc. | Avg." for t in t_values) + " |"
            lines += [head, "|---|" + "---:|" * (4 * len(t_values))]
            for method in methods:
                cells = []
                for t in t_values:
                    row = table.get((model, method, t))
                    vals = [row[m] for m in _METRICS] + [_mean(row)] if row else [None] * 4
                    cells += ["-" if v is None else f"{v:.2f}" for v in vals]
                lines.append(f"| {method} | " + " | ".join(cells) + " |")
        table = _mode_rows(records, "generation")
        lines.append(f"\n**{model}, cost** (s/edit; wall s of the cell; peak RSS MB)\n")
        lines += ["| method | " + " | ".join(f"T={t}" for t in t_values) + " |", "|---|" + "---:|" * len(t_values)]
        for method in methods:
            cells = []
            for t in t_values:
                row = table.get((model, method, t))
                cells.append(
                    "-"
                    if row is None
                    else f"{row['seconds_per_edit']:.2f}; {row['wall_seconds']:.0f}; {row['peak_rss_mb']:.0f}"
                )
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    for fail in results.get("failed", []):
        lines.append(f"\nnot measured: {fail['model']} {fail['method']} T={fail['T']}: {fail['error']}")
    return "\n".join(lines).lstrip() + "\n"


def plot_t_curve(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """mean(rel, gen, loc) against T (log scale): a panel per model and scoring, a line per method.

    Raises:
        InvalidInputError: no records.
        ImportError: matplotlib is not installed.
    """
    if not records:
        raise InvalidInputError("no cells to plot")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = list(dict.fromkeys(r["model"] for r in records))
    modes = ("generation", "teacher_forced")
    fig, axes = plt.subplots(
        len(modes), len(models), figsize=(5.5 * len(models), 7), squeeze=False, constrained_layout=True
    )
    methods = list(dict.fromkeys(r["method"] for r in records))
    palette = plt.get_cmap("tab10")
    for j, model in enumerate(models):
        for i, mode in enumerate(modes):
            ax = axes[i][j]
            table = _mode_rows(records, mode)
            for k, method in enumerate(methods):
                points = sorted((t, _mean(row)) for (mo, me, t), row in table.items() if mo == model and me == method)
                if points:
                    ax.plot(*zip(*points, strict=True), "-o", color=palette(k % 10), label=method)
            ax.set_xscale("log")
            ticks = sorted({int(r["T"]) for r in records})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.minorticks_off()
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{model}, {mode.replace('_', '-')}")
            ax.set_xlabel("T (sequential edits, scored after the last)")
            ax.set_ylabel("mean(rel, gen, loc)")
            ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside lower center", ncols=min(6, len(labels)))
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _child(spec: str) -> int:
    """Run one cell from its JSON spec and print its record on one line (the parent reads it)."""
    data = json.loads(spec)
    cell = GridCell(**data["cell"])
    settings = GridSettings(**data["settings"])
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    try:
        record = run_cell(cell, settings)
    except FactagentError as exc:
        record = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(_CELL_MARK + json.dumps(record) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1]))
