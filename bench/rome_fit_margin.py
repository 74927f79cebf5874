# ruff: noqa: T201
"""How ROME's value fits size a population's edits, and how much of each edit survives a merge's weight.

``edits``: replays ``factagent variants --n 10 --edits 5`` (seed 0: the same edits, sequential within each
variant) once per fit and prints each edit's final target NLL, value change ``‖v* − Wk‖`` (``delta_norm``) and
rank-one update norm (``update_norm``), the Adam fit (``v_optimizer="adam"``) against the default capped
L-BFGS fit. ``scaled``: for each population directory, how many of its variants' own edits hold when each
variant's delta is scaled by ``w`` alone (``base + w * δ``: what a task-arithmetic merge at weight ``w`` leaves
of it before any interference).

    PYTHONPATH=. python bench/rome_fit_margin.py edits --out per_edit.json
    PYTHONPATH=. python bench/rome_fit_margin.py scaled popA popL --weights 0.5 0.7 1.0
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

BASE = Path("eval/world/models/llama-world")
FITS: dict[str, dict[str, Any]] = {"adam": {"v_optimizer": "adam"}, "capped": {}}


def per_edit(n: int, edits: int, seed: int) -> list[dict[str, Any]]:
    """Each edit's NLL and norms under each fit, variant by variant from the base (as ``build_variants``)."""
    from eval.editing import select_cases, world_edit_cases
    from eval.world import DATA_DIR, load_world
    from tools.edit import get_editor, load_edited

    world = load_world(DATA_DIR)
    lm = load_edited(BASE)
    chosen = select_cases(lm, world_edit_cases(world, lm.prompt_format), n * edits, seed=seed, select="known")
    rows: list[dict[str, Any]] = []
    for fit, hparams in FITS.items():
        editor = get_editor("rome", corpus=[d.text for d in world.documents], **hparams)
        for i in range(n):
            lm = load_edited(BASE)
            for case in chosen[i * edits : (i + 1) * edits]:
                delta = editor.compute(lm, [case.request])
                editor.apply(lm, delta)
                info = delta.info
                rows.append(
                    {
                        "fit": fit,
                        "variant": f"v{i:02d}",
                        "edit": case.id,
                        "nll": info["nll"],
                        "delta_norm": info["delta_norm"],
                        "update_norm": info["update_norm"],
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    return rows


def scaled_held(population: Path, weights: list[float]) -> dict[float, int]:
    """Own edits held by the population's variants with each delta scaled by ``w`` (summed over variants)."""
    from safetensors.torch import load_file, save_file

    from agent.cli._population import WorldFitness, load_population

    pop = load_population(population)
    base = load_file(str(pop.base / "model.safetensors"))
    held = dict.fromkeys(weights, 0)
    tmp = Path(tempfile.mkdtemp(prefix="rome_fit_margin."))
    try:
        for variant, path in zip(pop.variants, pop.paths, strict=True):
            tensors = load_file(str(path / "model.safetensors"))
            own = WorldFitness(pop.base, list(variant.edit_ids), n_known=1)
            for w in weights:
                out = tmp / f"{variant.name}-{w}"
                shutil.copytree(path, out)
                mixed = {k: (base[k] + w * (t - base[k])).to(t.dtype).contiguous() for k, t in tensors.items()}
                save_file(mixed, str(out / "model.safetensors"), metadata={"format": "pt"})
                held[w] += round(own(out).edit_reliability * len(variant.edit_ids))
                shutil.rmtree(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    edits = sub.add_parser("edits", help="per-edit NLL and norms, Adam against capped")
    edits.add_argument("--n", type=int, default=10)
    edits.add_argument("--edits", type=int, default=5)
    edits.add_argument("--seed", type=int, default=0)
    edits.add_argument("--out", type=Path, default=None)
    scaled = sub.add_parser("scaled", help="own edits held with each variant's delta scaled")
    scaled.add_argument("populations", type=Path, nargs="+")
    scaled.add_argument("--weights", type=float, nargs="+", default=[0.5, 0.7, 1.0])
    args = parser.parse_args(argv)
    if args.command == "edits":
        rows = per_edit(args.n, args.edits, args.seed)
        if args.out:
            args.out.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    else:
        for population in args.populations:
            print(population, scaled_held(population, args.weights), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
