"""Editing cost benchmark: seconds per edit, peak memory and key-statistics time per method and reference model.

Each (model, method) pair runs in a fresh subprocess, so its peak resident memory (``getrusage`` ``ru_maxrss``:
Python, torch and native allocations alike; ``tracemalloc`` sees only Python objects) is its own. The child:

1. loads the model and the reference world; ``load_rss_mb`` is the peak right after loading;
2. for methods that weigh their update by key statistics (ROME, MEMIT: hyperparameters with ``mom2_n_texts``),
   times ``tools.edit._stats.second_moment`` for each edited layer over the world's documents into an empty
   cache directory (``stats_seconds``, summed over layers), then again from that disk cache with the in-process
   memo cleared (``stats_cached_seconds``);
3. edits ``--edits`` cases (a seeded sample of world edits the model answers correctly), one ``compute`` +
   ``apply`` per fact on the model holding the previous ones, and reports the median (``median_seconds_per_edit``)
   and the largest; the statistics are already in memory then, so edit times exclude them. For MEMIT the same
   facts are then also edited as one batch on the restored model (``batch_seconds_per_edit`` = batch time / k);
4. reports ``peak_rss_mb`` (whole child) and, on CUDA, ``peak_gpu_mb`` (``torch.cuda.max_memory_allocated``).

Example:
    PYTHONPATH=. .venv/bin/python bench/edit_bench.py --methods rome,memit --models gpt2 --edits 5
    PYTHONPATH=. .venv/bin/python bench/edit_bench.py --json   # a JSON list of rows on stdout, table on stderr
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

_REPO = Path(__file__).resolve().parents[1]
if str(_REPO) not in sys.path:  # run as a script: make bench, tools and eval importable from the checkout
    sys.path.insert(0, str(_REPO))

logger = logging.getLogger("bench.edit_bench")

REQUIRED_KEYS = (
    "method",
    "model",
    "edits",
    "median_seconds_per_edit",
    "peak_rss_mb",
    "stats_seconds",
    "stats_cached_seconds",
)
MODELS = ("gpt2", "llama")
ROW_MARK = "EDIT_BENCH_ROW "  # the child's result line on stdout (anything else there is ignored)


@dataclass(frozen=True)
class Row:
    """One (model, method) measurement; ``None`` where it does not apply (no statistics, skipped)."""

    method: str
    model: str
    edits: int
    median_seconds_per_edit: float | None
    peak_rss_mb: float | None
    stats_seconds: float | None  # key statistics computed into an empty cache, all edited layers
    stats_cached_seconds: float | None  # the same read back from the disk cache
    max_seconds_per_edit: float | None = None
    batch_seconds_per_edit: float | None = None  # MEMIT: all edits in one call, divided by their number
    load_rss_mb: float | None = None  # peak right after loading the model and world
    peak_gpu_mb: float | None = None
    stats_layers: tuple[int, ...] = ()
    device: str = ""
    skipped: bool = False
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Required keys always; optional ones when set; floats rounded."""
        data = dataclasses.asdict(self)
        keep = {k: v for k, v in data.items() if k in REQUIRED_KEYS or v not in (None, "", False, ())}
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in keep.items()}


def _rss_mb() -> float:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


# ---------------------------------------------------------------------------------------------------- child


def _stats_timing(lm: Any, editor: Any, corpus: list[str], cache: Path, n_texts: int) -> tuple[float, float, tuple]:
    """(cold seconds, disk-cache seconds, layers) of the key statistics of every layer the method edits."""
    from tools.edit._stats import clear_memo, second_moment

    layers = tuple(editor.hparams_for(lm).layers)
    cold = sum(second_moment(lm, layer, corpus=corpus, cache_dir=cache, max_texts=n_texts).seconds for layer in layers)
    clear_memo()
    cached = sum(
        second_moment(lm, layer, corpus=corpus, cache_dir=cache, max_texts=n_texts).seconds for layer in layers
    )
    return cold, cached, layers


def measure(method: str, model: str, edits: int, stats_texts: int | None, device: str | None, seed: int) -> Row:
    """Everything the module docstring lists, for one method on one reference model, in this process."""
    import torch

    from eval.editing._datasets import world_edit_cases
    from eval.editing._runner import BATCH_METHODS, select_cases
    from eval.world import load_world
    from eval.world._pipeline import DATA_DIR, MODEL_NAMES, MODELS_DIR
    from tools.edit import get_editor, journal_for
    from tools.lm._hf import HFLanguageModel

    lm = HFLanguageModel.load(MODELS_DIR / MODEL_NAMES[model], device=device)
    world = load_world(DATA_DIR)
    corpus = [d.text for d in world.documents]
    n_texts = min(len(corpus), stats_texts or len(corpus))
    cases = select_cases(lm, world_edit_cases(world, lm.prompt_format), edits, seed=seed)
    load_rss = _rss_mb()
    with tempfile.TemporaryDirectory(prefix="edit-bench-stats-") as tmp:
        cache = Path(tmp)
        probe = get_editor(method)
        fields = {f.name for f in dataclasses.fields(probe.hparams_class)}  # type: ignore[attr-defined]
        overrides = {"mom2_n_texts": n_texts} if "mom2_n_texts" in fields else {}
        editor = get_editor(method, corpus=corpus, cache_dir=cache, **overrides)
        stats: tuple[float | None, float | None, tuple] = (None, None, ())
        if overrides:
            stats = _stats_timing(lm, editor, corpus, cache, n_texts)
        seconds = []
        for case in cases:
            start = time.perf_counter()
            editor.apply(lm, editor.compute(lm, [case.request]))
            seconds.append(time.perf_counter() - start)
        batch = None
        if method in BATCH_METHODS and len(cases) > 1:
            journal_for(lm.model).rollback_all()
            start = time.perf_counter()
            editor.apply(lm, editor.compute(lm, [c.request for c in cases]))
            batch = (time.perf_counter() - start) / len(cases)
    gpu = torch.cuda.max_memory_allocated() / 2**20 if lm.device.type == "cuda" else None
    return Row(
        method=method,
        model=lm.name,
        edits=len(cases),
        median_seconds_per_edit=statistics.median(seconds) if seconds else None,
        peak_rss_mb=_rss_mb(),
        stats_seconds=stats[0],
        stats_cached_seconds=stats[1],
        max_seconds_per_edit=max(seconds) if seconds else None,
        batch_seconds_per_edit=batch,
        load_rss_mb=load_rss,
        peak_gpu_mb=gpu,
        stats_layers=stats[2],
        device=str(lm.device),
    )


def _child(args: argparse.Namespace) -> int:
    from tools.errors import FactagentError

    try:
        row = measure(args.methods[0], args.models[0], args.edits, args.stats_texts, args.device, args.seed)
    except (ImportError, FactagentError) as exc:  # a method not installed yet, or refusing the model
        row = Row(args.methods[0], args.models[0], 0, None, _rss_mb(), None, None, skipped=True, note=str(exc))
    print(ROW_MARK + json.dumps(row.to_dict()), flush=True)  # noqa: T201  (the parent reads this line)
    return 0


# ---------------------------------------------------------------------------------------------------- parent


def run_child(method: str, model: str, args: argparse.Namespace) -> Row:
    """Measure one pair in a fresh interpreter; a crash or timeout becomes a skipped row with the reason."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--child", "--methods", method, "--models", model]
    argv += ["--edits", str(args.edits), "--seed", str(args.seed)]
    argv += ["--stats-texts", str(args.stats_texts)] if args.stats_texts else []
    argv += ["--device", args.device] if args.device else []
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=args.timeout, env=env, check=False)
    except subprocess.TimeoutExpired:
        return Row(method, model, 0, None, None, None, None, skipped=True, note=f"timed out after {args.timeout} s")
    for line in done.stdout.splitlines():
        if line.startswith(ROW_MARK):
            data = json.loads(line[len(ROW_MARK) :])
            data["stats_layers"] = tuple(data.get("stats_layers", ()))
            return Row(**{f.name: data.get(f.name, f.default) for f in dataclasses.fields(Row)})
    tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
    return Row(method, model, 0, None, None, None, None, skipped=True, note=f"exit {done.returncode}: {tail}")


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(rows: Sequence[Row]) -> str:
    """A fixed-width table; skipped rows give their reason."""
    head = ("model", "method", "edits", "s/edit p50", "s/edit max", "batch s/edit", "stats s", "cached s", "peak MB")
    lines = [
        (
            r.model,
            r.method,
            str(r.edits),
            _fmt(r.median_seconds_per_edit, ".3f"),
            _fmt(r.max_seconds_per_edit, ".3f"),
            _fmt(r.batch_seconds_per_edit, ".3f"),
            _fmt(r.stats_seconds, ".2f"),
            _fmt(r.stats_cached_seconds, ".3f"),
            _fmt(r.peak_rss_mb, ".0f") + (f" (gpu {r.peak_gpu_mb:.0f})" if r.peak_gpu_mb is not None else ""),
        )
        for r in rows
    ]
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(head)]
    out = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    for row, line in zip(rows, lines, strict=True):
        text = "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
        out.append(text + (f"  skipped: {row.note}" if row.skipped else ""))
    out.append("s/edit: one compute + apply per fact, statistics already cached; peak MB: ru_maxrss of the child")
    return "\n".join(out) + "\n"


def _names(text: str, known: Sequence[str], what: str) -> list[str]:
    names = [s.strip().lower() for s in text.split(",") if s.strip()]
    unknown = [s for s in names if s not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown {what} {unknown or text!r}; choose from {', '.join(known)}")
    return names


def build_parser() -> argparse.ArgumentParser:
    from tools.edit import editor_names

    methods = editor_names()
    parser = argparse.ArgumentParser(
        prog="edit_bench.py", description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument(
        "--methods", type=lambda t: _names(t, methods, "methods"), default=methods, help=",".join(methods)
    )
    parser.add_argument("--models", type=lambda t: _names(t, MODELS, "models"), default=list(MODELS), help="gpt2,llama")
    parser.add_argument("--edits", type=int, default=5, help="facts edited one after another (default 5)")
    parser.add_argument("--stats-texts", type=int, help="corpus texts for key statistics (default: all documents)")
    parser.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    parser.add_argument("--seed", type=int, default=0, help="case-sampling seed")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per (model, method) child")
    parser.add_argument("--json", action="store_true", help="stdout: a JSON list of rows (table goes to stderr)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None) -> int:
    """Run the benchmark; returns the exit status (``out``: where rows/table go, default stdout)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.edits < 1 or (args.stats_texts is not None and args.stats_texts < 1):
        parser.error("--edits and --stats-texts must be >= 1")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.child:
        return _child(args)
    out = out or sys.stdout
    if os.getloadavg()[0] > 0.5:
        logger.warning("load average %.2f: other processes share the CPU, timings will be noisy", os.getloadavg()[0])
    rows = []
    for model in args.models:
        for method in args.methods:
            logger.info("measuring %s on %s", method, model)
            rows.append(run_child(method, model, args))
    table = format_table(rows)
    if args.json:
        out.write(json.dumps([r.to_dict() for r in rows], indent=2) + "\n")
        sys.stderr.write(table)
    else:
        out.write(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
