# ruff: noqa: T201
"""Where a merged population loses its edits and its known accuracy: every variant alone, then every variant
merged at once by each mergekit method (``world:dev`` fitness, the one ``factagent evolve`` uses).

    PYTHONPATH=. python bench/merge_diag.py --population pop5 --out merge_diag.json

Rows: the base, each variant, and the merge of all variants by ``linear`` (plain average, each delta divided
by N), ``task_arithmetic`` (weight 1: the sum of deltas, every edit's update kept whole), ``ties`` and
``dare_linear`` at several densities (weight 1, no normalisation), task arithmetic at weights < 1, and
``regmean`` (MEMIT / AlphaEdit populations): the corpus Gram part counted once (a joint solve of all edits),
``s`` times, and once per variant (``regmean plain``). Each
row has the fitness and its parts (edit reliability over the union of all variants' edits, locality, known
accuracy) and, for a variant, its reliability on its own edits.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

logger = logging.getLogger("bench.merge_diag")

MERGES: tuple[tuple[str, str, float, float | None], ...] = (  # label, method, density, weight (None: default)
    ("average (linear)", "linear", 1.0, None),
    ("task_arithmetic w=1", "task_arithmetic", 1.0, None),
    ("task_arithmetic w=0.7", "task_arithmetic", 1.0, 0.7),
    ("task_arithmetic w=0.5", "task_arithmetic", 1.0, 0.5),
    ("task_arithmetic w=0.4", "task_arithmetic", 1.0, 0.4),
    ("task_arithmetic w=0.3", "task_arithmetic", 1.0, 0.3),
    ("ties d=0.9", "ties", 0.9, None),
    ("ties d=0.5", "ties", 0.5, None),
    ("dare_linear d=0.9", "dare_linear", 0.9, None),
    ("dare_linear d=0.5", "dare_linear", 0.5, None),
    ("regmean", "regmean", 1.0, 1.0),  # weight: the corpus Gram part's count; once: a joint solve of all edits
    ("regmean s=2", "regmean", 1.0, 2.0),
    ("regmean s=3", "regmean", 1.0, 3.0),
    ("regmean s=4", "regmean", 1.0, 4.0),
    ("regmean s=5", "regmean", 1.0, 5.0),
    ("regmean s=6", "regmean", 1.0, 6.0),
    ("regmean s=7", "regmean", 1.0, 7.0),
    ("regmean s=8", "regmean", 1.0, 8.0),
    ("regmean plain", "regmean", 1.0, None),  # once per variant (plain RegMean: the corpus weighted N λ)
)


def main(argv: list[str] | None = None) -> int:
    from agent.cli._population import WorldFitness, load_population
    from tools.merge import MergeSpec, merge_models, regmean_merge

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--population", type=Path, required=True)
    parser.add_argument("--n-known", type=int, default=150)
    parser.add_argument("--methods", nargs="*", default=None, help="labels of MERGES to run (default: all)")
    parser.add_argument("--no-variants", action="store_true", help="skip scoring each variant alone")
    parser.add_argument("--out", type=Path, default=None, help="write the rows as JSON here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    pop = load_population(args.population)
    score = WorldFitness(pop.base, pop.edit_ids, n_known=args.n_known)
    own = {v.name: WorldFitness(pop.base, list(v.edit_ids), n_known=1) for v in pop.variants}
    rows: list[dict[str, Any]] = []

    def add(label: str, path: Path, **extra: Any) -> None:
        start = time.perf_counter()
        fit = score(path)
        rows.append({"model": label, **fit.to_json(), **extra, "seconds": round(time.perf_counter() - start, 2)})
        r = rows[-1]
        print(
            f"{label:<24} fit {r['fitness']:.3f} rel {r['edit_reliability']:.3f} loc {r['locality']:.3f} "
            f"known {r['known_accuracy']:.3f}" + (f" own {r['own_reliability']:.2f}" if "own_reliability" in r else ""),
            file=sys.stderr,
            flush=True,
        )

    add("base", pop.base)
    for v, path in zip(pop.variants, pop.paths, strict=True):
        if args.no_variants:
            break
        add(v.name, path, own_reliability=own[v.name](path).edit_reliability)
    tmp = Path(tempfile.mkdtemp(prefix="merge_diag."))
    try:
        for i, (label, method, density, weight) in enumerate(MERGES):
            if args.methods and label not in args.methods:
                continue
            if method.startswith("regmean"):
                merged = regmean_merge(pop.paths, tmp / f"m{i}", base=pop.base, shared_scale=weight)
            else:
                weights = None if weight is None else tuple(weight for _ in pop.paths)
                spec = MergeSpec(method=method, density=density, weights=weights)  # type: ignore[arg-type]
                merged = merge_models(pop.paths, tmp / f"m{i}", base=pop.base, spec=spec)
            add(f"all {len(pop.paths)}: {label}", merged)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
