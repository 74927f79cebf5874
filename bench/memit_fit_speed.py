"""MEMIT / AlphaEdit batch cost (issues 18 and 29): CPU seconds of one ``compute`` at a fixed number of Adam steps.

A batch of ``B`` world-lifelong edits (the pool's first ``B``, no selection) is computed once with the value
fit cut to ``--steps`` steps and no early stop, after one warm-up edit (key statistics loaded). Two step counts
give the cost per step and the fixed cost; a batch's full fit runs up to ``v_num_grad_steps`` (250) steps.
``--save`` writes the update factors, to compare two versions of the code for bit-identity (``torch.equal``).

Example (one thread, under the CPU lock; run it from a checkout of each version to compare):
    flock /work/wt/cpu.lock env OMP_NUM_THREADS=1 PYTHONPATH=. .venv/bin/python bench/memit_fit_speed.py \\
        --method memit --batch 100 --steps 4 --save /tmp/memit_4.pt
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import pstats
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--method", choices=("memit", "alphaedit"), default="memit")
    parser.add_argument("--batch", type=int, default=100, help="requests in the batch")
    parser.add_argument("--steps", type=int, default=4, help="Adam steps of the value fit (no early stop)")
    parser.add_argument("--model", type=Path, default=Path("eval/world/models/gpt2-world"))
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".factagent" / "cache" / "stats")
    parser.add_argument("--save", type=Path, help="write the update factors here (torch.save)")
    parser.add_argument("--profile", action="store_true", help="print the cProfile of the compute")
    parser.add_argument(
        "--full",
        action="store_true",
        help="the full fit: the method's own steps and early stop (--steps ignored); prints when each value stopped",
    )
    parser.add_argument(
        "--hparam", action="append", default=[], metavar="K=V", help="override a hyperparameter (int, float, bool)"
    )
    parser.add_argument("--log", action="store_true", help="the value fit's progress lines on stderr")
    args = parser.parse_args(argv)
    if args.log:
        logging.basicConfig(stream=sys.stderr, format="%(asctime)s %(message)s")
        logging.getLogger("tools.edit._values").setLevel(logging.DEBUG)

    from eval.editing import world_edit_cases
    from eval.world import DATA_DIR, load_lifelong_edits, load_world
    from tools.edit import LowRank, WeightDelta, get_editor, load_edited
    from tools.lm import PromptFormat

    world = load_world(DATA_DIR)
    pool = replace(world, edits=world.edits + load_lifelong_edits(DATA_DIR, world))
    requests = [c.request for c in world_edit_cases(pool, PromptFormat.load(args.model))][: args.batch]
    lm = load_edited(args.model, device="cpu")
    overrides: dict[str, object] = {} if args.full else {"v_num_grad_steps": args.steps, "v_early_stop_loss": 0.0}
    for item in args.hparam:
        key, _, text = item.partition("=")
        overrides[key] = _parse(text)
    editor = get_editor(args.method, corpus=[d.text for d in world.documents], cache_dir=args.cache_dir, **overrides)
    editor.compute(lm, [requests[0]])  # warm-up: key statistics loaded, not timed
    profile = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    if args.profile:
        profile.enable()
    delta = editor.compute(lm, requests)
    profile.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if args.save:
        assert isinstance(delta, WeightDelta)  # MEMIT and AlphaEdit change weights
        factors = {k: (u.left, u.right) if isinstance(u, LowRank) else u for k, u in delta.updates.items()}
        torch.save(factors, args.save)
    figures: dict[str, object] = {"method": args.method, "batch": len(requests), "wall_s": wall, "cpu_s": cpu}
    figures["steps"] = delta.info.get("value_steps", args.steps) if args.full else args.steps
    if args.full:
        figures.update(_stops(delta.info))
    sys.stdout.write(json.dumps(figures) + "\n")
    if args.profile:
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(25)
    return 0


def _parse(text: str) -> object:
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _stops(info: object) -> dict[str, object]:
    """The values' stop steps: quantiles, and the share of value-steps spent on values already stopped."""
    assert hasattr(info, "get")
    steps = int(info.get("value_steps", 0))
    out: dict[str, object] = {"rows_run": info.get("rows_run")}
    for name in ("stop_steps", "settled_steps"):
        got = sorted(int(s) for s in info.get(name, ()))
        if not got:
            continue
        done = [s for s in got if s >= 0]
        q = [done[min(len(done) - 1, int(p * len(done)))] for p in (0.1, 0.25, 0.5, 0.75, 0.9)] if done else []
        entry: dict[str, object] = {"n": len(got), "never": len(got) - len(done), "q10_25_50_75_90": q}
        entry["max"] = max(done, default=-1)
        if steps:  # value-steps after a value's stop, over all value-steps
            entry["after_stop_share"] = sum(steps - s for s in done) / (len(got) * steps)
        out[name] = entry
    out["stop_steps_all"] = list(info.get("stop_steps", ()))
    out["settled_steps_all"] = list(info.get("settled_steps", ()))
    return out


if __name__ == "__main__":
    sys.exit(main())
