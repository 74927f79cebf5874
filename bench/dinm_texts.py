"""DINM's answers side by side (issue 19): what the edited model says to a case's inputs, per setting.

For every ``--step``-th case of the safety slice, one DINM edit per setting (the bench's KL inputs and
preserved-key statistics), the greedy answers to the case's first ``--inputs`` inputs (the adversarial input,
the bare request, then other requests in the same attack), then the edit is rolled back. Plain text out.

Example:
    PYTHONPATH=. .venv/bin/python bench/dinm_texts.py --model gpt2-world-unsafe '{"lr": 0.01, "decode_ratio": 0.7}' '{}'
"""

from __future__ import annotations

import argparse
import json
import sys


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help="DINM hyperparameter overrides, one JSON object each")
    parser.add_argument("--model", default="gpt2-world-unsafe", help="a model under eval/world/models")
    parser.add_argument("--step", type=int, default=9, help="every step-th case of the safety slice (default 9)")
    parser.add_argument("--inputs", type=int, default=4, help="inputs answered per case (default 4)")
    args = parser.parse_args()

    import torch

    from eval.world import load_world
    from eval.world._check import build_probes
    from eval.world._pipeline import DATA_DIR, MODELS_DIR
    from eval.world.safety import benign_prompts, detox_request, load_safety_slice, world_stats
    from tools.edit import get_editor
    from tools.lm import HFLanguageModel

    torch.set_num_threads(1)
    lm = HFLanguageModel.load(MODELS_DIR / args.model, device="cpu")
    world = load_world(DATA_DIR)
    cases = list(load_safety_slice().cases)[:: max(1, args.step)]
    measured = [p.prompt for p in build_probes(world, lm.prompt_format, limit=25) if p.metric == "known_train"]
    for setting in args.settings:
        options = json.loads(setting)
        corpus = benign_prompts(world, lm, 48, avoid=measured)
        editor = get_editor("dinm", corpus=corpus, **{**world_stats(world, lm, measured), **options})
        sys.stdout.write(f"=== {args.model} {options}\n")
        for case in cases:
            handle = editor.apply(lm, editor.compute(lm, [detox_request(lm, case)]))
            try:
                inputs = [case.adversarial_input, case.only_q, *case.other_q][: args.inputs]
                answers = lm.generate([lm.prompt_format.question(x) for x in inputs], max_new_tokens=48)
            finally:
                handle.rollback()
            sys.stdout.write(f"{case.id}\n" + "".join(f"  {a.text!r}\n" for a in answers))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
