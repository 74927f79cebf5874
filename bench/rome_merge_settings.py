# ruff: noqa: T201
"""Do gentler ROME settings make edited variants merge better? For each setting: 4 LLaMA-reference variants x 5
world edits (``build_variants``, seed 0), each variant's ``world:dev`` fitness, and the task-arithmetic sums
(weight 1) of the first two and of all four.

    PYTHONPATH=. python bench/rome_merge_settings.py [default kl1 clamp4 wd1 layer1]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SETTINGS: dict[str, dict[str, Any]] = {
    "default": {},
    "kl1": {"kl_factor": 1.0},
    "clamp4": {"clamp_norm_factor": 4.0},
    "wd1": {"v_weight_decay": 1.0},
    "layer1": {"layers": (1,)},
}


def main(argv: list[str]) -> int:
    from agent.cli._population import WorldFitness, build_variants
    from agent.config import open_home
    from tools.merge import MergeSpec, merge_models

    base = Path("eval/world/models/llama-world")
    cache = open_home().path("cache") / "stats"
    for name in argv or list(SETTINGS):
        tmp = Path(tempfile.mkdtemp(prefix="rome_merge."))
        try:
            start = time.perf_counter()
            pop = build_variants(base, tmp / "pop", n=4, edits=5, seed=0, cache_dir=cache, hparams=SETTINGS[name])
            fit = WorldFitness(base, pop.edit_ids, n_known=150)
            rows = {p.name: fit(p).to_json() for p in pop.paths}
            spec = MergeSpec(method="task_arithmetic")
            rows["sum2"] = fit(merge_models(pop.paths[:2], tmp / "sum2", base=base, spec=spec)).to_json()
            rows["sum4"] = fit(merge_models(pop.paths, tmp / "sum4", base=base, spec=spec)).to_json()
            rounded = {k: {m: round(x, 3) for m, x in v.items()} for k, v in rows.items()}
            print(name, f"{time.perf_counter() - start:.0f}s", json.dumps(rounded), flush=True)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
