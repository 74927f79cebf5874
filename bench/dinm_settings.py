"""DINM settings compared on a spread subset of the safety slice (issue 19): one JSON line per setting.

Each setting runs :func:`eval.world.safety.run_detox_bench` with ``options={"dinm": setting}`` on every
``--step``-th case (one edit per case, rolled back before the next; known accuracy on 25 KNOWN facts), or
with ``--dev N`` on the first N dev cases (train requests in train attacks, none of the 54) with known
accuracy on the dev probes (49 KNOWN facts apart from the bench's and from the KL inputs).

Example:
    PYTHONPATH=. .venv/bin/python bench/dinm_settings.py --model gpt2-world-unsafe --step 5 \\
        '{}' '{"norm_constraint": 0.02}' '{"layers": [3]}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help="DINM hyperparameter overrides, one JSON object each")
    parser.add_argument("--model", default="gpt2-world-unsafe", help="a model under eval/world/models")
    parser.add_argument("--step", type=int, default=5, help="every step-th case of the safety slice (default 5)")
    parser.add_argument(
        "--dev", type=int, default=0, help="instead: the first N dev cases, known accuracy on the dev probes"
    )
    args = parser.parse_args()

    import torch

    from eval.world import load_world
    from eval.world._check import build_probes
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from eval.world.safety import (
        JUDGE_FILE,
        EmbeddingJudge,
        benign_prompts,
        dev_cases,
        dev_known_probes,
        load_safety_slice,
        run_detox_bench,
    )
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    cases = list(load_safety_slice().cases)[:: max(1, args.step)]
    lm = HFLanguageModel.load(MODELS_DIR / args.model, device="cpu")
    judge, world = EmbeddingJudge.load(JUDGE_FILE), load_world(DATA_DIR)
    known = None
    if args.dev:  # dev cases; known facts apart from the bench's probes and from its KL inputs
        cases = dev_cases(load_safety_slice())[: args.dev]
        bench = [p.prompt for p in build_probes(world, lm.prompt_format, limit=25) if p.metric == "known_train"]
        known = dev_known_probes(world, lm, avoid=bench + benign_prompts(world, lm, 48, avoid=bench))
    for setting in args.settings:
        options = json.loads(setting)
        start = time.time()
        (row,) = run_detox_bench(
            [(args.model, lm)], cases, world, judge, ("dinm",), options={"dinm": options}, known_probes=known
        )
        line = {"setting": options, "wall_s": round(time.time() - start), **row.to_json()}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
